"""Each training run gets a unique folder id (existing runs a fresh one each) and a diagnostics
document."""

import uuid

from django.db import migrations, models


def give_folders(apps, schema_editor):
    TrainingRun = apps.get_model("models_svc", "TrainingRun")
    for run in TrainingRun.objects.all().only("pk"):
        TrainingRun.objects.filter(pk=run.pk).update(folder=uuid.uuid4())


class Migration(migrations.Migration):
    dependencies = [("models_svc", "0005_run_lifecycle_and_load_failures")]

    operations = [
        migrations.AddField(
            model_name="trainingrun",
            name="folder",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(give_folders, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="trainingrun",
            name="folder",
            field=models.UUIDField(
                default=uuid.uuid4,
                editable=False,
                unique=True,
                help_text="names the run's folder under TRAINING_DIR (unique across databases)",
            ),
        ),
        migrations.AddField(
            model_name="trainingrun",
            name="diagnostics",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="importance weights (RL's c, KTO's r and z) at the start and per epoch, "
                "the label-smoothing weights used and the checkpoint-selection decoding",
            ),
        ),
    ]
