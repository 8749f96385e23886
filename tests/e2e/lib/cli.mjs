// SPDX-License-Identifier: Apache-2.0
// Reading what the admin commands print for people (src/cli/cmd_admin_view.c): aligned tables,
// "member: value" views and the one-time key banner, so that tests can compare them with the
// admin API's JSON.
//
//   const { headers, rows } = parseTable(r.stdout);   // rows: [{ ID: 'cli_…', NAME: 'acme', … }]
//   const view = parseView(r.stdout);                  // { id: 'col_…', active: 'true', … }
//   cellText(['a', 'b']) === 'a,b'                    // how a JSON value is shown

/** The text a table cell or view line shows for a JSON value (count: the number of items). */
export function cellText(value, { count = false } = {}) {
  if (count && Array.isArray(value)) return String(value.length);
  if (value === null || value === undefined || (Array.isArray(value) && value.length === 0)) return '-';
  if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 2
    && Number.isInteger(value.requests) && Number.isInteger(value.per_seconds)) {
    return `${value.requests}/${value.per_seconds}`;
  }
  if (Array.isArray(value)) {
    return value.map((v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : scalarText(v))).join(',');
  }
  if (typeof value === 'object') return JSON.stringify(value);
  return scalarText(value);
}

function scalarText(v) {
  if (typeof v === 'string') return v.replace(/[\x00-\x1f\x7f]/g, '?');
  if (v === null) return 'null';
  return String(v);
}

/**
 * A table: the first line holds the column titles (no spaces in them); each later line is a row
 * whose cells start where the titles do. Returns { headers, rows }, each row an object by title.
 * Only for ASCII tables (cells are cut by character offsets).
 */
export function parseTable(text) {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.length === 0) throw new Error('no table: the output is empty');
  const header = lines[0];
  const headers = [];
  const starts = [];
  for (const m of header.matchAll(/\S+/g)) {
    headers.push(m[0]);
    starts.push(m.index);
  }
  const rows = lines.slice(1).map((line) => {
    const row = {};
    headers.forEach((h, i) => {
      const end = i + 1 < starts.length ? starts[i + 1] : line.length;
      row[h] = line.slice(starts[i], end).trim();
    });
    return row;
  });
  return { headers, rows };
}

/**
 * A "member: value" view, up to its first empty line (after it may come the key banner).
 * Returns an object of texts; the member order is kept.
 */
export function parseView(text) {
  const view = {};
  for (const line of text.split('\n')) {
    if (line === '') break;
    const m = /^([^:\s]+):(?: +(.*))?$/.exec(line);
    if (!m) throw new Error(`not a "member: value" line: ${JSON.stringify(line)}\n--- output ---\n${text}`);
    view[m[1]] = m[2] ?? '';
  }
  return view;
}

/** The plain-text key of a "shown only once" banner, or null when the output has none. */
export function bannerKey(text) {
  const m = /Access profile key \(shown only once[^\n]*\n\n {4}(\S+)\n/.exec(text);
  return m ? m[1] : null;
}
