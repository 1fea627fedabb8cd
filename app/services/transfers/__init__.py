"""Moving a child's episode to another local authority, the plain export, and subject access.

One job per module: `requests` (asking, releasing, declining), `export` (the plain and the signed
file), `document` (reading a file and its signature), `checks` (every rule an import must pass),
`apply` (the import itself) and `subject_access`. docs/episode-export.md describes the file.
"""
