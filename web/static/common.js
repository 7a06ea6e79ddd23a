// Shared by the overview and the group page: small DOM helpers and the event-stream connection.

/** An element with attributes and children (strings become text nodes; never parsed as HTML). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/** Time of day (UTC) of a millisecond timestamp. */
export function clock(ms) {
  return new Date(ms).toISOString().slice(11, 19);
}

export function ago(ms, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  if (s < 129600) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

/**
 * Follows a server-sent event stream; `handlers` maps event names to functions of the parsed
 * data. The browser reconnects by itself (the server asks for 1 s); the badge says whether the
 * page is live.
 */
export function follow(url, handlers) {
  const badge = document.getElementById('live');
  const set = (state, text) => {
    badge.dataset.live = state;
    badge.textContent = text;
  };
  const es = new EventSource(url);
  es.onopen = () => set('live', 'live');
  es.onerror = () => set('down', 'reconnecting…');
  for (const [name, fn] of Object.entries(handlers))
    es.addEventListener(name, (ev) => {
      set('live', 'live');
      fn(JSON.parse(ev.data));
    });
  return es;
}
