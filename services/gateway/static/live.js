// live.js - GET /v1/events read as Server-Sent Events, by hand.
//
// Why not EventSource: it cannot send an Authorization header, and the gateway wants the
// token on every route but its static files (a token in the URL would end up in logs). So the
// stream is read with fetch() and a ReadableStream reader, and parsed here following the
// HTML standard's rules for text/event-stream: lines end in CR, LF or CRLF; a blank line
// dispatches the event; "field: value" (one leading space dropped); ":" starts a comment
// (the gateway's keep-alives); "retry" sets the reconnection delay.
//
// Reconnecting: after a drop, wait (the server's retry, doubling on each failure up to
// MAX_BACKOFF_MS, with jitter so that many dashboards do not all come back at once) and ask
// again with Last-Event-ID, so the gateway resumes right after the last event seen, or says
// "event: reset" when it cannot, and the page reads its figures again. A stream that says
// nothing for STALL_MS (the gateway sends a keep-alive every 15 s) is taken as dead.

const MAX_BACKOFF_MS = 30000;
const STALL_MS = 45000;
// A line longer than this is not one the gateway sends: the stream is broken, start over.
const LINE_MAX = 1 << 20;

export class SseParser {
  // onEvent({type, data, id}) for each dispatched event; onComment(text); onRetry(ms).
  constructor(handlers) {
    this.h = handlers;
    this.buf = "";
    this.reset();
    this.lastId = "";
  }

  reset() {
    this.type = "";
    this.data = "";
    this.hasData = false;
  }

  feed(text) {
    this.buf += text;
    for (;;) {
      const i = this.buf.search(/[\r\n]/);
      if (i < 0) {
        if (this.buf.length > LINE_MAX) {
          throw new Error("event stream line too long");
        }
        return;
      }
      if (this.buf[i] === "\r" && i === this.buf.length - 1) {
        return; /* a CR at the end of a chunk may be the first half of CRLF */
      }
      const skip = this.buf[i] === "\r" && this.buf[i + 1] === "\n" ? 2 : 1;
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + skip);
      this.line(line);
    }
  }

  line(raw) {
    // No field of this stream carries a NUL; an older gateway sent a stray one after its
    // greeting, so one is dropped rather than left to spoil the next field's name.
    const line = raw.indexOf("\0") >= 0 ? raw.replace(/\0/g, "") : raw;
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line[0] === ":") {
      if (this.h.onComment) {
        this.h.onComment(line.slice(1).trim());
      }
      return;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value[0] === " ") {
      value = value.slice(1);
    }
    switch (field) {
    case "event":
      this.type = value;
      break;
    case "data":
      this.data += value + "\n";
      this.hasData = true;
      break;
    case "id":
      this.lastId = value;
      break;
    case "retry":
      if (/^\d+$/.test(value) && this.h.onRetry) {
        this.h.onRetry(Number(value));
      }
      break;
    default:
      break; /* unknown fields are ignored */
    }
  }

  dispatch() {
    if (this.hasData) {
      this.h.onEvent({
        type: this.type || "message",
        data: this.data.slice(0, -1),
        id: this.lastId,
      });
    }
    this.reset();
  }
}

// The live connection. callbacks: onEvent(evt), onState("connecting"|"open"|"retrying",
// resumed) where resumed says the connection asked to go on after an event already seen (so
// nothing was missed, or a reset event will say so), onUnauthorized(status). url is the
// /v1/events URL with its query.
export class LiveStream {
  constructor(url, headersFn, callbacks) {
    this.url = url;
    this.headersFn = headersFn;
    this.cb = callbacks;
    this.stopped = true;
    this.lastId = "";
    this.retryMs = 3000;
    this.ctrl = null;
    this.stallTimer = null;
  }

  start() {
    if (!this.stopped) {
      return;
    }
    this.stopped = false;
    this.loop();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.stallTimer);
    if (this.ctrl) {
      this.ctrl.abort();
    }
  }

  async loop() {
    let failures = 0;
    while (!this.stopped) {
      this.cb.onState(failures ? "retrying" : "connecting");
      let gotData = false;
      try {
        gotData = await this.once();
      } catch (e) {
        if (this.stopped) {
          return;
        }
        if (e && e.unauthorized) {
          this.stopped = true;
          this.cb.onUnauthorized(e.unauthorized);
          return;
        }
      }
      if (this.stopped) {
        return;
      }
      failures = gotData ? 1 : failures + 1;
      this.cb.onState("retrying");
      const base = Math.min(this.retryMs * 2 ** (failures - 1), MAX_BACKOFF_MS);
      await new Promise((r) => setTimeout(r, base * (0.8 + 0.4 * Math.random())));
    }
  }

  // One connection, read until it ends; true when it delivered anything.
  async once() {
    this.ctrl = new AbortController();
    const extra = { Accept: "text/event-stream" };
    const resumed = this.lastId !== "";
    if (resumed) {
      extra["Last-Event-ID"] = this.lastId;
    }
    const res = await fetch(this.url, {
      headers: this.headersFn(extra),
      cache: "no-store",
      signal: this.ctrl.signal,
    });
    if (res.status === 401 || res.status === 403) {
      throw Object.assign(new Error("unauthorized"), { unauthorized: res.status });
    }
    if (!res.ok || !res.body) {
      throw new Error("HTTP " + res.status);
    }
    const parser = new SseParser({
      onEvent: (e) => {
        if (e.id) {
          this.lastId = e.id;
        }
        this.cb.onEvent(e);
      },
      onRetry: (ms) => {
        this.retryMs = Math.max(1000, ms);
      },
    });
    parser.lastId = this.lastId;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let got = false;
    const armStall = () => {
      clearTimeout(this.stallTimer);
      this.stallTimer = setTimeout(() => this.ctrl.abort(), STALL_MS);
    };
    armStall();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          break;
        }
        if (!got) {
          got = true;
          this.cb.onState("open", resumed);
        }
        armStall();
        parser.feed(value);
      }
    } finally {
      clearTimeout(this.stallTimer);
      reader.releaseLock();
    }
    return got;
  }
}
