// Server-sent events from an edge's streamed answer, as the `data` payload of each event. Written
// here rather than taken from a package because the router reads only what the edge API writes —
// `data:` lines, events separated by a blank line — and needs it chunk by chunk on the hot path;
// comments, `event:`/`id:` fields and CR line ends are handled for proxies that add them.

/** Splits a stream of text chunks into event data strings (multi-line data joined with "\n"). */
export async function* sseData(chunks: AsyncIterable<string>): AsyncGenerator<string> {
  let buffer = "";
  for await (const chunk of chunks) {
    buffer += chunk;
    for (;;) {
      const match = /\r?\n\r?\n/.exec(buffer);
      if (match === null) break;
      const block = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
      if (data.length > 0) yield data.join("\n");
    }
  }
}
