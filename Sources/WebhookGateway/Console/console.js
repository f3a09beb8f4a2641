// The operator console of webhook-gateway: one page over the admin API (docs/admin-api.yaml).
//
// Rules this file keeps (docs/threat-model.md, "The console"):
// - Everything shown from the API is set with textContent or as an attribute value of an element
//   made here: event data (order ids, bodies, headers) is text chosen by whoever sent the webhook,
//   and never becomes markup: no string is parsed as HTML or run as code, and there are no inline
//   handlers (the CSP forbids those too; ConsoleTests checks this file for the DOM's HTML sinks).
// - The admin token lives in sessionStorage (this tab only) and goes out only as a bearer header on
//   requests to this origin. A 401 forgets it and shows the sign-in form again.
'use strict';

(() => {
  const TOKEN_KEY = 'webhook-gateway.admin-token';
  const RATES_KEY = 'webhook-gateway.rate-samples';
  const REFRESH_MS = 5000;
  const RATE_WINDOW_MS = 10 * 60 * 1000;
  // A call that has not answered in this time is given up (and said so), so polls cannot pile up.
  const API_TIMEOUT_MS = 15000;
  // Headers whose values prove or grant something: shown as [redacted].
  const REDACTED_HEADER = /signature|authorization|token|secret|cookie|api-?key|password/i;

  const $ = (id) => document.getElementById(id);

  // ---- Building the page from data, as text only ----

  function el(tag, options, ...children) {
    const node = document.createElement(tag);
    const o = options || {};
    if (o.className) node.className = o.className;
    if (o.text !== undefined && o.text !== null) node.textContent = String(o.text);
    if (o.title) node.title = String(o.title);
    if (o.href) node.href = o.href;
    if (o.type) node.type = o.type;
    if (o.id) node.id = o.id;
    if (o.data) for (const [key, value] of Object.entries(o.data)) node.dataset[key] = String(value);
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function clear(node) { node.replaceChildren(); }

  function show(node, visible) { node.hidden = !visible; }

  function say(node, text, kind) {
    node.textContent = text || '';
    node.classList.toggle('error', kind === 'error');
    node.classList.toggle('ok', kind === 'ok');
  }

  // ---- Times ----

  function age(iso) {
    if (!iso) return '—';
    const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
    if (!Number.isFinite(seconds)) return iso;
    const past = seconds >= 0;
    const s = Math.abs(seconds);
    const text = s < 60 ? `${s} s` : s < 3600 ? `${Math.floor(s / 60)} min` : s < 86400
      ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min` : `${Math.floor(s / 86400)} d`;
    return past ? `${text} ago` : `in ${text}`;
  }

  function timeCell(iso) {
    return el('td', { text: age(iso), title: iso || '' });
  }

  function localTime(iso) {
    if (!iso) return '—';
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  // A datetime-local value (the browser's local time) as RFC 3339 UTC, whole seconds.
  function rfc3339(value) {
    if (!value) return null;
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return null;
    return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  // ---- The admin API ----

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${token()}`, Accept: 'application/json' };
    const init = {
      method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error', signal: AbortSignal.timeout(API_TIMEOUT_MS),
    };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, `the gateway did not answer (${error.message})`);
    }
    if (response.status === 401) {
      signOut('The gateway refused the token (it may have been rotated). Enter the current admin token.');
      throw new ApiError(401, 'the admin token was refused');
    }
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) {
      const message = data && typeof data.error === 'string' ? data.error : `HTTP ${response.status}`;
      throw new ApiError(response.status, message);
    }
    return data === null ? text : data;
  }

  function query(parameters) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(parameters)) {
      if (value !== null && value !== undefined && value !== '') search.set(key, value);
    }
    const text = search.toString();
    return text ? `?${text}` : '';
  }

  // ---- Signing in and out ----

  let consumerNames = [];

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(RATES_KEY);
    samples = [];
    stopTimers();
    forgetViews();
    show($('nav'), false);
    showView('login');
    say($('login-message'), message || '', message ? 'error' : undefined);
    $('login-token').value = '';
    $('login-token').focus();
  }

  async function signIn(candidate) {
    // Checked with a request of its own, so that a wrong token is told apart from a down gateway.
    // Any answer but 401 proves the token (a 503 while the store is down: the overview says so).
    let response;
    try {
      response = await fetch('/admin/consumers', {
        headers: { Authorization: `Bearer ${candidate}` }, cache: 'no-store', credentials: 'omit',
        signal: AbortSignal.timeout(API_TIMEOUT_MS),
      });
    } catch (error) {
      signOut(`The gateway did not answer (${error.message}).`);
      return;
    }
    if (response.status === 401) {
      signOut('That token was refused.');
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, candidate);
    $('login-token').value = '';
    say($('login-message'), '');
    started();
  }

  // Empties every view, so that nothing read with the token stays in the page after it is gone.
  function forgetViews() {
    for (const id of ['consumers', 'events', 'dead-letters', 'event-headers']) clear($(id).tBodies[0]);
    for (const id of ['event-summary', 'event-trace', 'event-body', 'event-id']) clear($(id));
    for (const id of ['overview-message', 'events-message', 'event-message', 'redeliver-message', 'dl-message']) say($(id), '');
    show($('events-more'), false);
    show($('dl-more'), false);
    cancelReplay();
    currentEvent = null;
    consumerNames = [];
    requests.events += 1;
    requests.event += 1;
    requests.deadLetters += 1;
  }

  // The latest request of each view: an answer to an older one (the operator clicked again, or
  // moved on) is dropped instead of mixed in.
  const requests = { events: 0, event: 0, deadLetters: 0 };

  function started() {
    show($('nav'), true);
    startTimers();
    if (!location.hash || location.hash === '#/login') location.hash = '#/overview';
    else route();
  }

  // ---- Views ----

  const views = ['login', 'overview', 'events', 'event', 'dead-letters'];

  function showView(name) {
    for (const view of views) show($(`view-${view}`), view === name);
    for (const link of document.querySelectorAll('#nav a')) {
      link.classList.toggle('current', link.id === `nav-${name === 'event' ? 'events' : name}`);
    }
  }

  function route() {
    if (!token()) { signOut(); return; }
    const hash = location.hash || '#/overview';
    if (hash.startsWith('#/event/')) {
      showView('event');
      let id;
      try { id = decodeURIComponent(hash.slice('#/event/'.length)); } catch (_) { id = hash.slice('#/event/'.length); }
      loadEvent(id);
    } else if (hash === '#/events') {
      showView('events');
      ensureConsumerNames();
    } else if (hash === '#/dead-letters') {
      showView('dead-letters');
      ensureConsumerNames($('dl-message')).then(fillDeadLetterConsumers);
    } else {
      showView('overview');
      refreshOverview();
    }
  }

  async function ensureConsumerNames(messageNode) {
    if (consumerNames.length) return consumerNames;
    try {
      const data = await api('GET', '/admin/consumers');
      consumerNames = data.consumers.map((c) => c.name);
    } catch (error) {
      if (messageNode && error.status !== 401) say(messageNode, `The consumers could not be read: ${error.message}`, 'error');
    }
    return consumerNames;
  }

  // ---- Overview ----

  let refreshing = false;

  function consumerState(consumer) {
    if (!consumer.paused) return { text: 'delivering', className: 'badge ok' };
    if (consumer.pausedBy === 'operator') return { text: 'paused by an operator', className: 'badge warn' };
    return { text: 'paused by failures', className: 'badge bad' };
  }

  async function refreshOverview() {
    if (refreshing || $('view-overview').hidden) return;
    refreshing = true;
    try {
      await Promise.all([refreshConsumers(), refreshHealth()]);
    } finally {
      refreshing = false;
    }
  }

  async function refreshConsumers() {
    let data;
    try {
      data = await api('GET', '/admin/consumers');
    } catch (error) {
      if (error.status !== 401) say($('overview-message'), `Consumers could not be read: ${error.message}`, 'error');
      return;
    }
    consumerNames = data.consumers.map((c) => c.name);
    if ($('overview-message').classList.contains('error')) say($('overview-message'), '');
    const body = $('consumers').tBodies[0];
    const rows = data.consumers.map((consumer) => {
      const state = consumerState(consumer);
      const action = el('button', {
        type: 'button',
        text: consumer.paused ? 'Resume' : 'Pause',
        className: consumer.paused ? 'resume' : 'pause quiet',
        data: { consumer: consumer.name, action: consumer.paused ? 'resume' : 'pause' },
      });
      action.addEventListener('click', () => pauseOrResume(consumer.name, action.dataset.action, action));
      const failure = el('td', { text: consumer.lastFailureAt ? age(consumer.lastFailureAt) : '—', title: consumer.lastFailureAt || '' });
      if (consumer.lastFailure) failure.append(el('div', { className: 'detail', text: consumer.lastFailure }));
      return el('tr', { data: { consumer: consumer.name } },
        el('td', {}, el('strong', { text: consumer.name }), el('div', { className: 'detail mono', text: consumer.url })),
        el('td', {}, el('span', { className: state.className, text: state.text })),
        el('td', { className: 'number', text: consumer.queueDepth }),
        timeCell(consumer.oldestPendingAt),
        timeCell(consumer.lastDeliveredAt),
        failure,
        el('td', {}, action));
    });
    body.replaceChildren(...rows);
  }

  async function pauseOrResume(name, action, button) {
    button.disabled = true;
    let failure = null;
    try {
      await api('POST', `/admin/consumers/${encodeURIComponent(name)}/${action}`);
    } catch (error) {
      failure = error;
    }
    await refreshConsumers();
    if (!failure) say($('overview-message'), `${name}: ${action === 'pause' ? 'paused' : 'resumed'}.`, 'ok');
    else if (failure.status !== 401) say($('overview-message'), `${name} could not be ${action}d: ${failure.message}`, 'error');
  }

  async function refreshHealth() {
    const node = $('store-health');
    try {
      const response = await fetch('/readyz', { cache: 'no-store', credentials: 'omit' });
      let status = '';
      try { status = (await response.json()).status; } catch (_) { status = `HTTP ${response.status}`; }
      if (response.ok) {
        node.textContent = 'Store: writable, gateway ready';
        node.className = 'health ok';
      } else {
        node.textContent = `Not ready: ${status}`;
        node.className = 'health bad';
      }
    } catch (error) {
      node.textContent = `The gateway did not answer (${error.message})`;
      node.className = 'health bad';
    }
  }

  // ---- Rates from /metrics ----

  function readSamples() {
    try {
      const samples = JSON.parse(sessionStorage.getItem(RATES_KEY) || '[]');
      return Array.isArray(samples) ? samples : [];
    } catch (_) { return []; }
  }

  let samples = readSamples();

  // Sums a counter's series whose `outcome` label is one of `outcomes`.
  function sumCounter(text, name, outcomes) {
    let total = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue;
      const close = line.lastIndexOf('}');
      const labels = line.slice(name.length + 1, close);
      const outcome = /(?:^|,)outcome="([^"]*)"/.exec(labels);
      if (!outcome || !outcomes.includes(outcome[1])) continue;
      const value = Number(line.slice(close + 1).trim().split(/\s+/)[0]);
      if (Number.isFinite(value)) total += value;
    }
    return total;
  }

  let sampling = false;

  async function sampleRates() {
    if (sampling) return;
    sampling = true;
    let text;
    try {
      text = await api('GET', '/metrics');
    } catch (error) {
      if (error.status !== 401) {
        $('rate-ingest').textContent = `rates unavailable: ${error.message}`;
        $('rate-delivery').textContent = '';
      }
      return;
    } finally {
      sampling = false;
    }
    if (typeof text !== 'string') return;
    const now = Date.now();
    samples.push({
      t: now,
      ingest: sumCounter(text, 'webhook_gateway_requests_total', ['accepted']),
      delivered: sumCounter(text, 'webhook_gateway_deliveries_total', ['delivered']),
      failed: sumCounter(text, 'webhook_gateway_deliveries_total', ['retried', 'dead_lettered']),
    });
    samples = samples.filter((s) => now - s.t <= RATE_WINDOW_MS + REFRESH_MS);
    try { sessionStorage.setItem(RATES_KEY, JSON.stringify(samples)); } catch (_) { /* full: keep in memory */ }
    drawRates();
  }

  // Per-second rates between consecutive samples; a counter that went down (a restart) starts over.
  function rates(key) {
    const points = [];
    for (let i = 1; i < samples.length; i += 1) {
      const seconds = (samples[i].t - samples[i - 1].t) / 1000;
      const delta = samples[i][key] - samples[i - 1][key];
      if (seconds <= 0) continue;
      points.push({ t: samples[i].t, value: delta >= 0 ? delta / seconds : 0 });
    }
    return points;
  }

  function format(rate) {
    return rate >= 100 ? rate.toFixed(0) : rate.toFixed(1);
  }

  function drawRates() {
    if ($('view-overview').hidden) return;
    const ingest = rates('ingest');
    const delivered = rates('delivered');
    const failed = rates('failed');
    drawChart($('chart-ingest'), [{ points: ingest, className: 'ingest' }]);
    drawChart($('chart-delivery'), [{ points: delivered, className: 'ok' }, { points: failed, className: 'bad' }]);
    const last = (points) => (points.length ? format(points[points.length - 1].value) : '…');
    $('rate-ingest').textContent = `now ${last(ingest)}/s`;
    $('rate-delivery').textContent = `now ${last(delivered)}/s delivered, ${last(failed)}/s failed`;
  }

  const chartColours = { ingest: '#2f6fb3', ok: '#2e7d32', bad: '#c62828', grid: '#c9ced6', text: '#5b6470' };

  function drawChart(canvas, series) {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(200, canvas.clientWidth);
    const height = canvas.clientHeight || 120;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const g = canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const now = Date.now();
    const left = now - RATE_WINDOW_MS;
    let top = 1;
    for (const s of series) for (const p of s.points) top = Math.max(top, p.value);
    top *= 1.15;
    const pad = { l: 4, r: 4, t: 16, b: 14 };
    const x = (t) => pad.l + ((t - left) / RATE_WINDOW_MS) * (width - pad.l - pad.r);
    const y = (v) => height - pad.b - (v / top) * (height - pad.t - pad.b);
    g.strokeStyle = chartColours.grid;
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(pad.l, y(0) + 0.5);
    g.lineTo(width - pad.r, y(0) + 0.5);
    g.stroke();
    g.fillStyle = chartColours.text;
    g.font = '11px system-ui, sans-serif';
    g.fillText(`${format(top / 1.15)}/s`, pad.l, 11);
    g.fillText('10 min ago', pad.l, height - 2);
    const nowLabel = 'now';
    g.fillText(nowLabel, width - pad.r - g.measureText(nowLabel).width, height - 2);
    for (const s of series) {
      const points = s.points.filter((p) => p.t >= left);
      if (!points.length) continue;
      g.strokeStyle = chartColours[s.className];
      g.lineWidth = 2;
      g.beginPath();
      points.forEach((p, i) => (i === 0 ? g.moveTo(x(p.t), y(p.value)) : g.lineTo(x(p.t), y(p.value))));
      g.stroke();
      // A dot per sample, so that the first minute (few samples) shows too.
      g.fillStyle = chartColours[s.className];
      for (const p of points) {
        g.beginPath();
        g.arc(x(p.t), y(p.value), 2.5, 0, 2 * Math.PI);
        g.fill();
      }
    }
  }

  // ---- Timers ----

  let timer = null;

  function startTimers() {
    stopTimers();
    sampleRates();
    timer = setInterval(() => {
      sampleRates();
      refreshOverview();
    }, REFRESH_MS);
  }

  function stopTimers() {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  // ---- Events ----

  let eventsCursor = null;
  let eventsFilter = {};

  function deliverySummary(deliveries) {
    const cell = el('td');
    for (const d of deliveries) {
      cell.append(el('span', { className: `badge ${statusClass(d.status)}`, text: `${d.consumer}: ${d.status.replace('_', '-')}` }), ' ');
    }
    if (!deliveries.length) cell.textContent = 'none';
    return cell;
  }

  function statusClass(status) {
    return { delivered: 'ok', dead_lettered: 'bad', pending: 'warn', delivering: 'warn' }[status] || '';
  }

  async function searchEvents(more) {
    const sequence = ++requests.events;
    const message = $('events-message');
    if (!more) {
      const form = $('events-form');
      eventsFilter = {
        orderId: form.orderId.value.trim(),
        eventType: form.eventType.value.trim(),
        status: form.status.value,
        since: rfc3339(form.since.value),
        until: rfc3339(form.until.value),
      };
      eventsCursor = null;
      clear($('events').tBodies[0]);
    }
    say(message, 'Searching…');
    let page;
    try {
      page = await api('GET', `/admin/events${query({ ...eventsFilter, limit: 50, cursor: eventsCursor })}`);
    } catch (error) {
      if (sequence === requests.events && error.status !== 401) say(message, `Search failed: ${error.message}`, 'error');
      return;
    }
    if (sequence !== requests.events) return;
    const body = $('events').tBodies[0];
    for (const event of page.events) {
      const link = el('a', { href: `#/event/${encodeURIComponent(event.id)}`, text: localTime(event.receivedAt), title: event.id });
      const row = el('tr', { className: 'clickable', data: { eventId: event.id } },
        el('td', {}, link),
        el('td', { text: event.eventType }),
        el('td', { className: 'mono', text: event.orderId === null ? '—' : event.orderId }),
        el('td', { text: event.sandbox ? `${event.source} (sandbox)` : event.source }),
        deliverySummary(event.deliveries));
      row.addEventListener('click', (e) => {
        if (e.target !== link) location.hash = link.getAttribute('href');
      });
      body.append(row);
    }
    eventsCursor = page.nextCursor;
    show($('events-more'), Boolean(eventsCursor));
    const shown = body.rows.length;
    say(message, shown ? `${shown} event${shown === 1 ? '' : 's'}${eventsCursor ? ' (more below)' : ''}.` : 'No event matches.');
  }

  // ---- One event ----

  let currentEvent = null;

  async function loadEvent(id) {
    const sequence = ++requests.event;
    currentEvent = null;
    $('event-id').textContent = id;
    for (const node of [$('event-summary'), $('event-trace'), $('event-headers').tBodies[0], $('event-body')]) clear(node);
    say($('redeliver-message'), '');
    say($('event-message'), 'Loading…');
    let event;
    try {
      event = await api('GET', `/admin/events/${encodeURIComponent(id)}`);
    } catch (error) {
      if (sequence !== requests.event) return;
      if (error.status === 404) say($('event-message'), 'No such event (unknown, or pruned after events.retention).', 'error');
      else if (error.status !== 401) say($('event-message'), `The event could not be read: ${error.message}`, 'error');
      return;
    }
    if (sequence !== requests.event) return;
    currentEvent = event;
    say($('event-message'), '');
    renderEvent(event);
    await ensureConsumerNames($('redeliver-message'));
    if (sequence !== requests.event) return;
    renderRedeliver(event);
  }

  function renderEvent(event) {
    const summary = $('event-summary');
    const fields = [
      ['Source', event.sandbox ? `${event.source} (TikTok sandbox)` : event.source],
      ['Event type', event.eventType],
      ['Order id', event.orderId === null ? '—' : event.orderId],
      ['Dedup key', event.dedupKey],
      ['Received', `${localTime(event.receivedAt)} (${event.receivedAt})`],
    ];
    for (const [name, value] of fields) summary.append(el('dt', { text: name }), el('dd', { className: 'mono', text: value }));

    const trace = $('event-trace');
    if (!event.deliveries.length) trace.append(el('p', { text: 'No consumer takes this event.' }));
    for (const d of event.deliveries) {
      const steps = el('ol', { className: 'steps' });
      const queued = d.replayOf === 'redeliver' ? 'queued again: redelivered by an operator'
        : d.replayOf ? `queued again: replay of dead letter ${d.replayOf}` : 'received and queued';
      steps.append(step('', queued, d.queuedAt));
      d.attempts.forEach((attempt, index) => {
        const outcome = attempt.status === null ? `no response: ${attempt.error || 'unknown error'}`
          : `HTTP ${attempt.status}${attempt.error ? `: ${attempt.error}` : ''}`;
        const good = attempt.status !== null && attempt.status >= 200 && attempt.status < 300;
        const duration = typeof attempt.durationMs === 'number' ? `, ${attempt.durationMs} ms` : '';
        steps.append(step(good ? 'ok' : 'bad', `attempt ${index + 1}: ${outcome}${duration}`, attempt.at));
      });
      if (d.status === 'delivered') steps.append(step('ok', 'delivered', d.finishedAt));
      else if (d.status === 'dead_lettered') {
        steps.append(step('bad', `dead-lettered${d.reason ? ` (${d.reason})` : ''}${d.deadLetterId ? `, dead letter ${d.deadLetterId}` : ''}`, d.finishedAt));
      } else if (d.nextAttemptAt) steps.append(step('warn', `${d.status}: next attempt`, d.nextAttemptAt));
      else steps.append(step('warn', d.status, null));
      trace.append(el('section', { className: 'delivery', data: { consumer: d.consumer } },
        el('h3', {}, el('span', { text: d.consumer }), ' ', el('span', { className: `badge ${statusClass(d.status)}`, text: d.status.replace('_', '-') })),
        steps));
    }

    const headers = $('event-headers').tBodies[0];
    for (const name of Object.keys(event.headers || {}).sort()) {
      const value = REDACTED_HEADER.test(name) ? '[redacted]' : event.headers[name];
      headers.append(el('tr', {}, el('th', { className: 'mono', text: name }), el('td', { className: 'mono', text: value })));
    }

    const body = $('event-body');
    if (typeof event.body === 'string') {
      let text = event.body;
      try { text = JSON.stringify(JSON.parse(event.body), null, 2); } catch (_) { /* not JSON: as received */ }
      body.textContent = text;
    } else if (typeof event.bodyBase64 === 'string') {
      body.textContent = `(not UTF-8; base64)\n${event.bodyBase64}`;
    } else {
      body.textContent = '(no body stored)';
    }
  }

  function step(kind, text, iso) {
    return el('li', { className: kind },
      el('time', { text: iso ? localTime(iso) : '', title: iso || '' }), ' ',
      el('span', { text }));
  }

  function renderRedeliver(event) {
    const box = $('redeliver-consumers');
    box.replaceChildren(el('legend', { text: 'To the consumers' }));
    const taken = new Set(event.deliveries.map((d) => d.consumer));
    for (const name of consumerNames) {
      const input = el('input', { type: 'checkbox' });
      input.value = name;
      input.checked = taken.has(name);
      box.append(el('label', { className: 'inline' }, input, ` ${name}`));
    }
  }

  async function redeliver() {
    if (!currentEvent) return;
    const chosen = [...$('redeliver-consumers').querySelectorAll('input:checked')].map((i) => i.value);
    const message = $('redeliver-message');
    if (!chosen.length) { say(message, 'Choose at least one consumer.', 'error'); return; }
    let answer;
    try {
      answer = await api('POST', `/admin/events/${encodeURIComponent(currentEvent.id)}/redeliver`, { consumers: chosen });
    } catch (error) {
      if (error.status !== 401) say(message, `Redelivery failed: ${error.message}`, 'error');
      return;
    }
    const parts = [];
    if (answer.queued.length) parts.push(`Queued for ${answer.queued.join(', ')}.`);
    for (const s of answer.skipped) parts.push(`${s.consumer} skipped: ${s.reason}.`);
    const id = currentEvent.id;
    await loadEvent(id);
    say(message, parts.join(' '), answer.queued.length ? 'ok' : 'error');
  }

  // ---- Dead letters ----

  let deadLetterCursor = null;
  let deadLetterFilter = null;
  let pendingReplay = null;

  function fillDeadLetterConsumers() {
    const select = $('dl-consumer');
    if ([...select.options].map((o) => o.value).join('\n') === consumerNames.join('\n')) return;
    const current = select.value;
    select.replaceChildren(...consumerNames.map((name) => {
      const option = el('option', { text: name });
      option.value = name;
      return option;
    }));
    if (consumerNames.includes(current)) select.value = current;
  }

  function readDeadLetterFilter() {
    const form = $('dl-form');
    return {
      consumer: form.consumer.value,
      eventType: form.eventType.value.trim() || null,
      dedupKey: form.dedupKey.value.trim() || null,
      since: rfc3339(form.since.value),
      until: rfc3339(form.until.value),
    };
  }

  async function listDeadLetters(more) {
    const sequence = ++requests.deadLetters;
    const message = $('dl-message');
    if (!more) {
      deadLetterFilter = readDeadLetterFilter();
      deadLetterCursor = null;
      clear($('dead-letters').tBodies[0]);
      $('dl-select-all').checked = false;
      cancelReplay();
    }
    if (!deadLetterFilter || !deadLetterFilter.consumer) { say(message, 'Choose a consumer.', 'error'); return; }
    say(message, 'Loading…');
    let page;
    try {
      page = await api('GET', `/admin/dead-letters${query({ ...deadLetterFilter, limit: 50, cursor: deadLetterCursor })}`);
    } catch (error) {
      if (sequence === requests.deadLetters && error.status !== 401) say(message, `Dead letters could not be read: ${error.message}`, 'error');
      return;
    }
    if (sequence !== requests.deadLetters) return;
    const body = $('dead-letters').tBodies[0];
    for (const letter of page.deadLetters) {
      const select = el('input', { type: 'checkbox', className: 'dl-select' });
      select.value = letter.id;
      select.setAttribute('aria-label', `select ${letter.id}`);
      select.addEventListener('change', updateSelection);
      const replayOne = el('button', { type: 'button', text: 'Replay', className: 'replay-one quiet', data: { id: letter.id } });
      replayOne.addEventListener('click', () => askReplay({ consumer: deadLetterFilter.consumer, ids: [letter.id] }, 'this dead letter'));
      const last = Array.isArray(letter.attempts) && letter.attempts.length ? letter.attempts[letter.attempts.length - 1] : null;
      const reason = el('td', { text: letter.reason });
      if (last) reason.append(el('div', { className: 'detail', text: last.status === null ? (last.error || '') : `last: HTTP ${last.status}` }));
      const eventCell = el('td', { className: 'mono', text: letter.eventType });
      if (letter.eventId) eventCell.append(el('div', { className: 'detail' }, el('a', { href: `#/event/${encodeURIComponent(letter.eventId)}`, text: 'event trace' })));
      body.append(el('tr', { data: { id: letter.id } },
        el('td', {}, select),
        el('td', { text: localTime(letter.deadLetteredAt), title: letter.id }),
        eventCell,
        el('td', { className: 'mono', text: letter.dedupKey }),
        reason,
        el('td', { className: 'number', text: Array.isArray(letter.attempts) ? letter.attempts.length : letter.attempts }),
        el('td', { text: letter.replayed ? `yes, ${age(letter.replayedAt)}` : 'no', title: letter.replayedAt || '' }),
        el('td', {}, replayOne)));
    }
    deadLetterCursor = page.nextCursor;
    show($('dl-more'), Boolean(deadLetterCursor));
    updateSelection();
    const shown = body.rows.length;
    say(message, shown ? `${shown} dead letter${shown === 1 ? '' : 's'}${deadLetterCursor ? ' (more below)' : ''}.` : 'No dead letter matches.');
  }

  function selectedIds() {
    return [...document.querySelectorAll('#dead-letters .dl-select:checked')].map((i) => i.value);
  }

  function updateSelection() {
    const count = selectedIds().length;
    $('dl-replay-selected').disabled = count === 0;
    $('dl-replay-selected').textContent = count ? `Replay selected (${count})` : 'Replay selected';
  }

  // A replay is always counted first (dryRun) and done only when confirmed. What is confirmed is
  // exactly the counted set: the ids the dry run names.
  async function askReplay(request, what) {
    const message = $('dl-message');
    cancelReplay();
    const body = { ...request, force: $('dl-force').checked };
    for (const key of Object.keys(body)) if (body[key] === null) delete body[key];
    let count;
    try {
      count = await api('POST', '/admin/dead-letters/replay', { ...body, dryRun: true });
    } catch (error) {
      if (error.status !== 401) say(message, `The replay could not be counted: ${error.message}`, 'error');
      return;
    }
    const notes = [];
    if (count.skipped) notes.push(`${count.skipped} already replayed will be skipped (tick “also those already replayed” to include them)`);
    if (count.notFound && count.notFound.length) notes.push(`${count.notFound.length} not found`);
    if (!count.replayed) {
      say(message, `Nothing to replay${notes.length ? `: ${notes.join('; ')}` : ''}.`, 'error');
      return;
    }
    pendingReplay = { consumer: body.consumer, ids: count.ids, force: body.force };
    $('dl-confirm-text').textContent = `Replay ${count.replayed} dead letter${count.replayed === 1 ? '' : 's'} (${what}) to ${body.consumer}?${notes.length ? ` ${notes.join('; ')}.` : ''}`;
    say(message, '');
    show($('dl-confirm'), true);
    $('dl-confirm-yes').focus();
  }

  function cancelReplay() {
    pendingReplay = null;
    show($('dl-confirm'), false);
  }

  async function confirmReplay() {
    const request = pendingReplay;
    cancelReplay();
    if (!request) return;
    let answer;
    try {
      answer = await api('POST', '/admin/dead-letters/replay', request);
    } catch (error) {
      if (error.status !== 401) say($('dl-message'), `The replay failed: ${error.message}`, 'error');
      return;
    }
    await listDeadLetters(false);
    say($('dl-message'), `Replayed ${answer.replayed}${answer.skipped ? `, skipped ${answer.skipped}` : ''}. The deliveries are queued.`, 'ok');
  }

  // ---- Wiring ----

  function on(id, type, handler) { $(id).addEventListener(type, handler); }

  function wire() {
    on('login-form', 'submit', (e) => { e.preventDefault(); signIn($('login-token').value.trim()); });
    on('sign-out', 'click', () => signOut('Signed out.'));
    on('events-form', 'submit', (e) => { e.preventDefault(); searchEvents(false); });
    on('events-more', 'click', () => searchEvents(true));
    on('redeliver-form', 'submit', (e) => { e.preventDefault(); redeliver(); });
    on('dl-form', 'submit', (e) => { e.preventDefault(); listDeadLetters(false); });
    on('dl-more', 'click', () => listDeadLetters(true));
    on('dl-select-all', 'change', (e) => {
      for (const box of document.querySelectorAll('#dead-letters .dl-select')) box.checked = e.target.checked;
      updateSelection();
    });
    on('dl-replay-selected', 'click', () => {
      const ids = selectedIds();
      if (ids.length) askReplay({ consumer: deadLetterFilter.consumer, ids }, `${ids.length} selected`);
    });
    on('dl-replay-all', 'click', () => {
      // The filter of the list shown (Show applies the form), named in the confirmation.
      const filter = deadLetterFilter || readDeadLetterFilter();
      if (!filter.consumer) { say($('dl-message'), 'Choose a consumer.', 'error'); return; }
      const named = ['eventType', 'dedupKey', 'since', 'until'].filter((k) => filter[k]).map((k) => `${k} ${filter[k]}`);
      askReplay(filter, named.length ? `all with ${named.join(', ')}` : 'all of this consumer');
    });
    on('dl-confirm-yes', 'click', confirmReplay);
    on('dl-confirm-no', 'click', cancelReplay);
    window.addEventListener('hashchange', route);
    window.addEventListener('resize', drawRates);
  }

  document.addEventListener('DOMContentLoaded', () => {
    wire();
    if (token()) signIn(token());
    else signOut();
  });
})();
