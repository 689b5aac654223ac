from mnist_pipeline.pictures import pick_pictures, write_pictures
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    params = snakemake.params
    pictures = pick_pictures(
        snakemake.input.predictions, snakemake.input.table, len(params.classes)
    )
    write_pictures(
        pictures,
        params.classes,
        snakemake.output,
        about={"dataset": params.dataset, "split": params.split},
    )
    log.info(
        "%s, %s: %d images, %d misclassified",
        snakemake.output.samples,
        snakemake.output.misclassified,
        len(pictures.sample_images),
        len(pictures.wrong_images),
    )
