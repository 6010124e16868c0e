// The public HTTP API and the task event socket, as the console uses them.

const KEY_STORAGE = "agent.apiKey";
const RECONNECT_BASE_MS = 250;
const RECONNECT_MAX_MS = 5000;
// The socket close codes come from the server (`/console/config.json`), never a copy here.
let closeCodes = {};

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

// A key kept "for this session only" lives in sessionStorage (gone when the tab closes);
// otherwise in localStorage. Only one of the two holds it at a time.
export function getKey() {
  return sessionStorage.getItem(KEY_STORAGE) || localStorage.getItem(KEY_STORAGE) || "";
}

export function keyIsSessionOnly() {
  return sessionStorage.getItem(KEY_STORAGE) !== null;
}

export function setKey(key, sessionOnly = false) {
  sessionStorage.removeItem(KEY_STORAGE);
  localStorage.removeItem(KEY_STORAGE);
  if (key) (sessionOnly ? sessionStorage : localStorage).setItem(KEY_STORAGE, key);
}

/** Take `?token=` from the address (then drop it from the bar: it is a secret). */
export function adoptTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token) {
    setKey(token, keyIsSessionOnly());
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
}

export async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(
      response.status,
      error.code || String(response.status),
      error.message || response.statusText,
      error.details,
    );
  }
  return data;
}

export const api = {
  listTasks: (limit = 50) => request("GET", `/v1/tasks?limit=${limit}`),
  getTask: (id) => request("GET", `/v1/tasks/${id}`),
  createTask: (body) => request("POST", "/v1/tasks", body),
  resume: (id, body) => request("POST", `/v1/tasks/${id}/resume`, body),
  toolCalls: (id) => request("GET", `/v1/tasks/${id}/tool-calls`),
  cancel: (id) => request("POST", `/v1/tasks/${id}/cancel`),
  config: async () => {
    const response = await fetch("/console/config.json");
    const config = response.ok ? await response.json() : {};
    closeCodes = config.close_codes || {};
    return config;
  },
};

/**
 * Follow a task's events: stored ones after `afterSeq`, then live ones; reconnects from
 * the last cursor (slow-consumer close, restarts, network), so no stored event is
 * missed or delivered twice.
 */
export class EventStream {
  constructor(taskId, afterSeq, handlers) {
    this.taskId = taskId;
    this.cursor = afterSeq;
    this.handlers = handlers;
    this.failures = 0;
    this.closed = false;
    this.socket = null;
    this.open();
  }

  url() {
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const params = new URLSearchParams({ after_seq: String(this.cursor), token: getKey() });
    return `${scheme}://${window.location.host}/v1/tasks/${this.taskId}/events/ws?${params}`;
  }

  open() {
    if (this.closed) return;
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.onopen = () => this.handlers.onState?.("connected");
    socket.onmessage = (message) => {
      this.failures = 0;
      const data = JSON.parse(message.data);
      if (data.kind === "event") {
        if (data.cursor <= this.cursor) return;
        this.cursor = data.cursor;
        this.handlers.onEvent?.(data.event, true);
      } else if (data.kind === "ephemeral") {
        this.handlers.onEvent?.(data.event, false);
      } else if (data.kind === "caught_up") {
        this.handlers.onCaughtUp?.(data.cursor);
      }
    };
    socket.onclose = (event) => {
      if (this.closed) return;
      if (event.code === closeCodes.unauthorized || event.code === closeCodes.not_found) {
        this.handlers.onState?.(event.code === closeCodes.unauthorized ? "unauthorized" : "not found");
        return;
      }
      this.failures += 1;
      this.handlers.onState?.("reconnecting");
      const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_BASE_MS * 2 ** this.failures);
      this.timer = setTimeout(() => this.open(), delay);
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000);
  }
}
