"""What reviewers make of outputs: rubrics, judgements, drafts, blind pairs, who saw what, review status."""
