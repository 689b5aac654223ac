"""The shape of an MNIST-family image and the class count of the ten-class datasets: one place."""

SIDE = 28  # every image is SIDE x SIDE
PIXELS = SIDE * SIDE
CLASSES = 10  # MNIST, Fashion-MNIST and KMNIST; the book's network has this many outputs
