from mnist_pipeline.evaluation import score
from mnist_pipeline.pictures import pick_pictures, write_pictures
from mnist_pipeline.rulelog import rule_log

with rule_log(snakemake.log[0]) as log:
    params = snakemake.params
    shards, table = snakemake.input.shards, snakemake.input.table
    scores = score(shards, table, params.classes)
    pictures = pick_pictures(shards, table, len(params.classes))
    write_pictures(
        pictures,
        scores,
        snakemake.output,
        about={"dataset": params.dataset, "split": params.split},
    )
    log.info(
        "%s, %s: %d images, %d misclassified; %s",
        snakemake.output.samples,
        snakemake.output.misclassified,
        len(pictures.sample_images),
        len(pictures.wrong_images),
        snakemake.output.confusion_png,
    )
