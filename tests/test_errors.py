"""Every error class of the package derives from MnistPipelineError, so one except catches them."""

import importlib
import inspect
import pkgutil

import mnist_pipeline
from mnist_pipeline import MnistPipelineError


def test_every_error_class_of_the_package_derives_from_the_base():
    classes = {
        f"{info.name}.{name}": cls
        for info in pkgutil.iter_modules(mnist_pipeline.__path__)
        for name, cls in inspect.getmembers(importlib.import_module(f"mnist_pipeline.{info.name}"))
        if inspect.isclass(cls)
        and issubclass(cls, Exception)
        and cls.__module__.startswith("mnist_pipeline")
        and not name.startswith("_")
    }
    assert len(classes) >= 10
    assert [name for name, cls in classes.items() if not issubclass(cls, MnistPipelineError)] == []
