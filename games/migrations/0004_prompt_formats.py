"""Prompt formats: systems and turns name the rendering of the policy prompt.

Systems and model turns that exist before this migration were prompted in the platform's first
layout, so they are marked ``platform-p1``; new systems default to ``respect-2024``.
"""

from django.db import migrations, models

HELP = (
    "how the policy prompt is written (models_svc.prompt_formats): respect-2024 "
    "(the released checkpoints' layout) or platform-p1"
)


def mark_earlier_model_turns(apps, schema_editor):
    Turn = apps.get_model("games", "Turn")
    Turn.objects.filter(
        action_probability__isnull=False, game__system__policy_checkpoint__startswith="hf:"
    ).update(prompt_format="platform-p1")


class Migration(migrations.Migration):
    dependencies = [
        ("games", "0003_live_play"),
    ]

    operations = [
        migrations.AddField(
            model_name="system",
            name="prompt_format",
            field=models.CharField(default="platform-p1", help_text=HELP, max_length=40),
        ),
        migrations.AlterField(
            model_name="system",
            name="prompt_format",
            field=models.CharField(default="respect-2024", help_text=HELP, max_length=40),
        ),
        migrations.AddField(
            model_name="turn",
            name="prompt_format",
            field=models.CharField(
                blank=True,
                help_text="prompt format the model's action was produced under",
                max_length=40,
            ),
        ),
        migrations.RunPython(mark_earlier_model_turns, migrations.RunPython.noop),
    ]
