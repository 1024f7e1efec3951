"""A whole traceback whose message no indexed template fits still says where it was raised:
its innermost frame. When the frame is in a package the index covers (the message is from
another release, or built at run time), that file is the raise site; when the frame's own
source line is the `raise` (or `warn`) and its message fits the pasted one, the traceback
quotes the statement that raised it, which is as strong as a template of the index.
"""
from __future__ import annotations

import ast

from doctor.explainer.cutframes import relative_file
from doctor.explainer.raiseindex import ALL_PACKAGES, HOLE, category, normalize
from doctor.results.explain import ExceptionInfo, RaiseSite

QUOTED, FRAME_ONLY = 0.7, 0.4   # fitted on the development split of the corpus only


def quoted_template(code: str | None) -> tuple[str, str] | None:
    """(exception type, message template) of a one-line `raise X(...)` or `warnings.warn(...)`
    as a traceback shows it; None when the line is anything else or does not parse."""
    from doctor.explainer.raisesites import message_template, _dotted

    try:
        node = ast.parse((code or "").strip()).body[0]
    except (SyntaxError, ValueError, IndexError):
        return None
    call = node.exc if isinstance(node, ast.Raise) else node.value if isinstance(node, ast.Expr) else None
    if not isinstance(call, ast.Call) or not call.args:
        return None
    name = _dotted(call.func)
    if isinstance(node, ast.Expr) and not name.endswith("warn"):
        return None
    template = message_template(call.args[0])
    return (name, template) if template and template.replace(HOLE, "").strip() else None


def fits(template: str, message: str) -> bool:
    """The whole message is the template with its holes filled (RE2: linear in the message)."""
    import re

    import re2

    parts = [re.escape(normalize(p)) for p in template.split(HOLE)]
    return re2.compile("(?s)" + ".*?".join(parts)).fullmatch(normalize(message)) is not None


def innermost_frame_site(final: ExceptionInfo) -> RaiseSite | None:
    if not final.frames or not final.message:
        return None
    frame = final.frames[-1]
    rel = relative_file(frame.file)
    if rel is None or rel.split("/", 1)[0] not in ALL_PACKAGES:
        return None
    quoted = quoted_template(frame.code)
    said = quoted is not None and fits(quoted[1], final.message)
    return RaiseSite(rel.split("/", 1)[0], "(as in the traceback)", rel, frame.line or 0, frame.function,
                     "raise" if said else "frame", quoted[0] if said and quoted else "",
                     quoted[1].replace(HOLE, "…") if said and quoted else "", "", category(rel),
                     "the message is not in the indexed release; the traceback's innermost frame is here",
                     QUOTED if said else FRAME_ONLY)
