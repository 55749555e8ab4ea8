"""Cross-table checks of game configs, enforced by PostgreSQL itself.

A trigger rejects a config whose context does not have the study's size, whose two orders are not
the same images, whose targets are not in the context, or whose target count is outside the
study's range. SQLite (the demo only) relies on ``games.services`` validation instead.
"""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION games_check_config() RETURNS trigger AS $$
DECLARE
    study_row games_study%ROWTYPE;
    n_context integer;
    n_targets integer;
BEGIN
    SELECT * INTO study_row FROM games_study WHERE id = NEW.study_id;
    n_context := jsonb_array_length(NEW.speaker_order);
    n_targets := jsonb_array_length(NEW.targets);
    IF n_context <> study_row.context_size THEN
        RAISE EXCEPTION 'game config: context has % images, study % requires %',
            n_context, study_row.name, study_row.context_size USING ERRCODE = 'check_violation';
    END IF;
    IF (SELECT count(DISTINCT e) FROM jsonb_array_elements_text(NEW.speaker_order) e) <> n_context
    THEN
        RAISE EXCEPTION 'game config: speaker order names an image twice'
            USING ERRCODE = 'check_violation';
    END IF;
    IF jsonb_array_length(NEW.listener_order) <> n_context
       OR NOT (NEW.listener_order @> NEW.speaker_order AND NEW.speaker_order @> NEW.listener_order)
    THEN
        RAISE EXCEPTION 'game config: listener order is not the same images as the speaker order'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NOT (NEW.speaker_order @> NEW.targets) THEN
        RAISE EXCEPTION 'game config: targets are not all in the context'
            USING ERRCODE = 'check_violation';
    END IF;
    IF (SELECT count(DISTINCT e) FROM jsonb_array_elements_text(NEW.targets) e) <> n_targets
       OR n_targets < study_row.min_targets OR n_targets > study_row.max_targets THEN
        RAISE EXCEPTION 'game config: % distinct targets required between % and %',
            n_targets, study_row.min_targets, study_row.max_targets
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER games_gameconfig_check
    BEFORE INSERT OR UPDATE ON games_gameconfig
    FOR EACH ROW EXECUTE FUNCTION games_check_config();
"""

DROP = """
DROP TRIGGER IF EXISTS games_gameconfig_check ON games_gameconfig;
DROP FUNCTION IF EXISTS games_check_config();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("games", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
