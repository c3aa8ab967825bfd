from evalsite.studies.management.commands._import_command import ImportCommand
from evalsite.studies.services import prompts_import


class Command(ImportCommand):
    help = "Import prompts into a study from JSONL ({\"id\", \"prompt\"|\"messages\", \"category\"}) or CSV (id,prompt,category). All or nothing."
    kind = "prompts"

    def import_file(self, **kwargs):
        return prompts_import(**kwargs)
