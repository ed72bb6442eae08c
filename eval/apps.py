from django.apps import AppConfig


class EvalConfig(AppConfig):
    name = "eval"
    verbose_name = "LLM evaluation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from eval import system_checks  # noqa: F401, PLC0415  (AppConfig.ready: registers the system checks)
