/** Text for HTML (the job summary): & < > " ' escaped, so host output (container logs, errors) stays text. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A summary table cell: escaped, except the line breaks lading itself joins lines with. */
export function escapeCell(text: string): string {
  return escapeHtml(text).replace(/&lt;br&gt;/g, '<br>');
}
