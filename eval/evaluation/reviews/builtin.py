"""The built-in default rubric (the same as migration 0006 made)."""

DEFAULT_QUESTIONS = [
    {"key": "quality", "label": "Overall quality", "type": "rating", "scale": [1, 5], "required": True},
    {"key": "comment", "label": "Comment", "type": "text", "required": False},
]
DEFAULT_GUIDELINES = (
    "Rate how well the output answers the prompt: 5 = correct, complete and clear; "
    "3 = usable with fixes; 1 = wrong or unusable. Compare with the reference when there is one."
)
