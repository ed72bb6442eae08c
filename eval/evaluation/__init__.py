"""What makes reviews worth having: rubrics, judgements that pin what they
judged, blind pairs and drafts. Views, pages and commands call these
services; the models are in eval/models/evaluation.py."""
