"""HTML tables for Jupyter: how `Plan`, `Convolver` and `TilePlan` show in a notebook.

Only formatting: each caller passes the text it already prints, cell by cell.
"""

from __future__ import annotations

from html import escape

__all__ = ["table"]


def table(title: str, head, rows, notes=(), marked=()) -> str:
    """An HTML table: `title` above it, a header row, `rows` of cells, `notes` below.

    Rows whose index is in `marked` are shown in bold (the chosen candidate).

    Examples
    --------
    >>> print(table("t", ["a", "b"], [[1, "<x>"]], notes=["n"]))  # doctest: +NORMALIZE_WHITESPACE
    <div class="fftconv-table"><p><b>t</b></p><table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>&lt;x&gt;</td></tr></tbody></table><p>n</p></div>
    """
    cells = "".join(f"<th>{escape(str(h))}</th>" for h in head)
    body = []
    for i, row in enumerate(rows):
        tds = "".join(f"<td>{escape(str(c))}</td>" for c in row)
        style = ' style="font-weight:bold"' if i in marked else ""
        body.append(f"<tr{style}>{tds}</tr>")
    foot = "".join(f"<p>{escape(str(n))}</p>" for n in notes)
    return (
        f'<div class="fftconv-table"><p><b>{escape(title)}</b></p><table><thead><tr>{cells}'
        f"</tr></thead><tbody>{''.join(body)}</tbody></table>{foot}</div>"
    )
