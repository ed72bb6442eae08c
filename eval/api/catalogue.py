"""``/api/models``: the providers and models a job may use here. Read from
the provider catalogue, which imports no SDK (the web process never does)."""

from ninja import Router

from eval.api.responses import answers
from eval.api.schemas import ModelCatalogue
from eval.providers import catalogue

router = Router(tags=["models"])


@router.get("", response=answers({200: ModelCatalogue}), url_name="api-models")
def list_models(request):
    """Configured providers (an API key is set; the offline `echo` demo while
    ECHO_ENABLED) and their models with each one's max_tokens; `judge_only` models
    judge judge runs and generate nothing."""
    providers = [
        {
            "name": entry.name,
            "label": entry.label,
            "demo": bool(entry.demo),
            "models": [
                {"name": model.name, "max_tokens": model.max_tokens, "judge_only": model.judge_only}
                for model in entry.models()
            ],
        }
        for entry in catalogue.configured()
    ]
    return {"providers": providers}
