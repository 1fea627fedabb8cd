"""What a process model's files say: which file defines the process, its user tasks (lane and form
files) and the forms they show. Read without fetching or expanding anything a document points to."""
from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"


@dataclass
class UserTask:
    id: str
    name: str
    lane: str | None
    schema_file: str | None
    ui_file: str | None
    bpmn_file: str


@dataclass
class FormEntry:
    """A form file with the UI schema that goes with it and the user tasks that show it."""

    schema_file: str
    ui_file: str | None
    tasks: list[UserTask]
    schema_present: bool
    ui_present: bool


def parse_xml(text: str):
    """The root element, never fetching or expanding anything the document points to."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    return etree.fromstring(text.encode("utf-8"), parser)


def main_file(process_id: str, bpmn_files: dict[str, str]) -> str | None:
    """The file that defines the process itself (others hold called processes)."""
    names = sorted(bpmn_files)
    return next((n for n in names if f'id="{process_id}"' in bpmn_files[n]), names[0] if names else None)


def user_tasks(bpmn_files: dict[str, str]) -> list[UserTask]:
    """The user tasks of every file, in document order, with their lane and form files."""
    found = []
    for name in sorted(bpmn_files):
        try:
            root = parse_xml(bpmn_files[name])
        except (etree.XMLSyntaxError, ValueError):
            continue  # a broken file is reported by validation
        lanes = {ref.text.strip(): lane.get("name") for lane in root.iter(f"{{{BPMN_NS}}}lane")
                 for ref in lane.iter(f"{{{BPMN_NS}}}flowNodeRef") if ref.text}
        for task in root.iter(f"{{{BPMN_NS}}}userTask"):
            props = {p.get("name"): p.get("value") for p in task.iter(f"{{{SPIFF_NS}}}property")}
            task_id = task.get("id") or ""
            found.append(UserTask(task_id, task.get("name") or task_id, lanes.get(task_id),
                                  props.get("formJsonSchemaFilename"), props.get("formUiSchemaFilename"), name))
    return found


def ui_name_for(schema_file: str) -> str:
    """The UI schema file a form gets when no task names one: x.schema.json -> x.uischema.json."""
    stem = schema_file.removesuffix(".json").removesuffix(".schema")
    return f"{stem}.uischema.json"


def form_entries(bpmn_files: dict[str, str], forms: dict[str, str]) -> list[FormEntry]:
    """Each form the tasks name (present or missing), then the form files no task names, a
    schema with its conventional UI schema (x.schema.json, x.uischema.json) as one entry."""
    entries: dict[str, FormEntry] = {}
    for task in user_tasks(bpmn_files):
        if not task.schema_file:
            continue
        entry = entries.get(task.schema_file)
        if entry is None:
            entry = entries[task.schema_file] = FormEntry(task.schema_file, task.ui_file, [],
                                                          task.schema_file in forms, task.ui_file in forms)
        entry.tasks.append(task)
    claimed = set(entries) | {e.ui_file for e in entries.values() if e.ui_file}
    for name in sorted(forms):
        if name in claimed or name.endswith(".uischema.json"):
            continue
        ui = ui_name_for(name)
        entries[name] = FormEntry(name, None if ui in claimed else ui, [], True, ui in forms and ui not in claimed)
        claimed |= {name, ui}
    for name in sorted(set(forms) - claimed):  # a UI schema whose form is gone
        entries[name] = FormEntry(name, None, [], True, False)
    return list(entries.values())


def form_entry(bpmn_files: dict[str, str], forms: dict[str, str], name: str) -> FormEntry | None:
    """The entry a form file belongs to, whether `name` is its schema or its UI schema."""
    return next((e for e in form_entries(bpmn_files, forms) if name in (e.schema_file, e.ui_file)), None)


def file_of(bpmn_files: dict[str, str], forms: dict[str, str], path: str) -> tuple[str, str] | None:
    """(file name, text) for a path in the zip layout: `name.bpmn` or `forms/name.json`."""
    if path.startswith("forms/"):
        name = path.removeprefix("forms/")
        return (name, forms[name]) if name in forms else None
    return (path, bpmn_files[path]) if path in bpmn_files else None

