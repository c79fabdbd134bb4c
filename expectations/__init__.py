"""The quality gate: Great Expectations suites over the warehouse, findings and quarantine, the
platform's rejections, masked personal values in every quality artefact."""
