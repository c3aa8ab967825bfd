from evalsite.studies.management.commands._import_command import ImportCommand
from evalsite.studies.services import responses_import


class Command(ImportCommand):
    help = "Import responses into a study from JSONL ({\"prompt_id\", \"system\", \"text\", \"meta\"}) or CSV (prompt_id,system,text). All or nothing."
    kind = "responses"

    def import_file(self, **kwargs):
        return responses_import(**kwargs)
