"""Everything a human rater touches: entry links, assignment engine, blind A/B pages, quality control,
expert audit pages. Imports evalsite.studies, never models_serving."""
