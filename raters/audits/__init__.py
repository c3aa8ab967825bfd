"""Expert factuality audits: the audit plan, assignment of responses to experts, the blind audit pages, and the
reads the results pages need (selectors.py). Lives under raters/ because experts, like crowd raters, are the
humans judging responses; it is its own app so its tables and migrations stand apart from the rating engine's."""
