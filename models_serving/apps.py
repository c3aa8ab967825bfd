from django.apps import AppConfig


class ModelsServingConfig(AppConfig):
    name = "models_serving"
    verbose_name = "Model serving"

    def ready(self) -> None:
        # Study files may give a system an [systems.endpoint] table. The study app must not import this app
        # (dependencies point down), so this app registers its handler with the study-file loader.
        from evalsite.studies.studyfile import register_system_table
        from models_serving.studyfile import endpoint_apply, endpoint_remove, endpoint_validate

        register_system_table("endpoint", validate=endpoint_validate, apply=endpoint_apply,
                              remove=endpoint_remove, supplies_responses=True)
