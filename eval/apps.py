from django.apps import AppConfig


class EvalConfig(AppConfig):
    name = "eval"
    verbose_name = "LLM evaluation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from eval import checks  # noqa: F401  (registers system checks)
