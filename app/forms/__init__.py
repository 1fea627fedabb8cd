"""User-task forms: JSON Schema + UI schema -> GOV.UK Design System fields, and the posted form back to JSON.

HTML names are the dotted data paths (`section_d_parents_carers.parents_carers.0.name`), so a post
maps straight back onto the JSON the schema describes and the validator's error paths name the
field they belong to. Nothing needs JavaScript: repeating rows are added and removed with submit
buttons (`apply_row_action`), and what was typed is always shown back as typed (`raw`).

- schema_reading: which widget, label, order and choices each answer has
- model, building, errors: the fields one request shows (`build_form`), errors placed on them
- markup, pieces: the fields as HTML, each field's markup compiled once and filled per request
- posted: the post read back (`parse_form`), rows added and removed
- summary: answers for read-only display
"""
