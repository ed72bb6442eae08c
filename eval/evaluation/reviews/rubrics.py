"""Rubrics: which one a task uses, what a valid rubric is, and answers
checked against it (server-side, whatever the page did)."""

from eval.evaluation.errors import InvalidInput
from eval.evaluation.reviews.builtin import DEFAULT_GUIDELINES, DEFAULT_QUESTIONS
from eval.models import Rubric, SourceRubric

DEFAULT_NAME = "default"
QUESTION_TYPES = ("rating", "choice", "boolean", "text")
MAX_TEXT_ANSWER = 20_000
MAX_QUESTIONS = 50


def default_rubric():
    """The built-in default (made by a migration), its newest version."""
    rubric = Rubric.objects.filter(name=DEFAULT_NAME).order_by("-version").first()
    if rubric is None:  # someone deleted it: make it again
        rubric = Rubric.objects.create(
            name=DEFAULT_NAME, version=1, guidelines=DEFAULT_GUIDELINES, questions=DEFAULT_QUESTIONS
        )
    return rubric


def rubric_for_source(source):
    """The rubric the admin set for this task source, else the default."""
    chosen = SourceRubric.objects.filter(source=source).select_related("rubric").first()
    return chosen.rubric if chosen is not None else default_rubric()


def rubric_json(rubric):
    return {
        "id": rubric.pk,
        "name": rubric.name,
        "version": rubric.version,
        "guidelines": rubric.guidelines,
        "questions": rubric.questions,
    }


# --- the rubric itself (admin) ---------------------------------------------------


def check_questions(questions):
    """Raise InvalidInput naming the first problem in a rubric's question list."""
    if not isinstance(questions, list) or not questions:
        raise InvalidInput("questions must be a non-empty list", field="questions")
    if len(questions) > MAX_QUESTIONS:
        raise InvalidInput(f"at most {MAX_QUESTIONS} questions", field="questions")
    keys = set()
    for index, question in enumerate(questions):
        where = f"questions[{index}]"
        _check_question(question, where)
        if question["key"] in keys:
            raise InvalidInput(f"{where}: duplicate key {question['key']!r}", field="questions")
        keys.add(question["key"])


def _check_question(question, where):
    if not isinstance(question, dict):
        raise InvalidInput(f"{where} must be an object", field="questions")
    key = question.get("key")
    if not isinstance(key, str) or not key.isidentifier():
        raise InvalidInput(f"{where}: key must be an identifier (letters, digits, _)", field="questions")
    if not isinstance(question.get("label"), str) or not question["label"].strip():
        raise InvalidInput(f"{where}: label is required", field="questions")
    kind = question.get("type")
    if kind not in QUESTION_TYPES:
        raise InvalidInput(f"{where}: type must be one of {', '.join(QUESTION_TYPES)}", field="questions")
    if kind == "rating":
        _scale(question, where)
    if kind == "choice":
        options = question.get("options")
        if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) for o in options):
            raise InvalidInput(f"{where}: a choice needs at least two text options", field="questions")


def _scale(question, where="question"):
    scale = question.get("scale", [1, 5])
    valid = (
        isinstance(scale, list)
        and len(scale) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in scale)
        and scale[0] < scale[1]
    )
    if not valid:
        raise InvalidInput(f"{where}: scale must be [low, high] integers", field="questions")
    return scale


# --- answers ---------------------------------------------------------------------


def clean_answers(rubric, answers, *, enforce_required=True):
    """The answers checked against the rubric: known keys only, each of its
    type; required ones present when ``enforce_required``. Empty text answers
    are dropped."""
    if answers is None:
        answers = {}
    if not isinstance(answers, dict):
        raise InvalidInput("answers must be an object", field="answers")
    questions = {q["key"]: q for q in rubric.questions}
    unknown = sorted(set(answers) - set(questions))
    if unknown:
        raise InvalidInput(f"unknown question(s): {', '.join(unknown)}", field=f"answers.{unknown[0]}")
    cleaned = {}
    for key, question in questions.items():
        value = answers.get(key)
        if value is not None and value != "":
            cleaned[key] = _answer(question, value)
        elif enforce_required and question.get("required"):
            raise InvalidInput(f"{question['label']} is required", field=f"answers.{key}")
    return cleaned


def _answer(question, value):
    key, kind = question["key"], question["type"]
    field = f"answers.{key}"
    if kind == "rating":
        low, high = _scale(question)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(f"{question['label']} must be an integer from {low} to {high}", field=field)
    elif kind == "choice":
        if value not in question["options"]:
            raise InvalidInput(f"{question['label']} must be one of {', '.join(question['options'])}", field=field)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidInput(f"{question['label']} must be true or false", field=field)
    elif not isinstance(value, str) or len(value) > MAX_TEXT_ANSWER:
        raise InvalidInput(f"{question['label']} must be text of at most {MAX_TEXT_ANSWER} characters", field=field)
    return value
