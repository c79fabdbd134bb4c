"""The data dictionary against the built warehouse: every documented model is built, in the schema
dbt builds it in, and every built column is documented (no gaps)."""

from campusdx.pipeline import dictionary


def test_the_dictionary_of_the_built_warehouse_has_no_gaps(warehouse):
    text, gaps = dictionary.build(warehouse=warehouse.path)
    assert gaps == []
    assert "Columns were compared with the warehouse" in text
