"""Lobbies are closed until a researcher opens them (rounds that exist keep their setting), and a
lobby entry may name the system the worker asked to play (the demo's local entry)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('games', '0006_simulated_studies'),
    ]

    operations = [
        migrations.AddField(
            model_name='lobbyentry',
            name='system',
            field=models.ForeignKey(blank=True, help_text="The system the worker asked to play (the local entry); empty: the round's mix.", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='lobby_entries', to='games.system'),
        ),
        migrations.AlterField(
            model_name='round',
            name='lobby_open',
            field=models.BooleanField(default=False, help_text='Whether the lobby admits and pairs workers (researchers open it).'),
        ),
    ]
