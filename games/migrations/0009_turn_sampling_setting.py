from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("games", "0008_system_decode_when_lobby_closes")]

    operations = [
        migrations.AddField(
            model_name="turn",
            name="sampling_temperature",
            field=models.FloatField(
                blank=True,
                help_text="temperature the model's action (and p_t) was sampled at",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="turn",
            name="sampling_constrained",
            field=models.BooleanField(
                blank=True,
                help_text="whether sampling was constrained to valid actions (null: not recorded)",
                null=True,
            ),
        ),
    ]
