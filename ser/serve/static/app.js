// The live page of `python -m ser.serve`: the microphone streamed to /stream, a dropped file
// sent to /predict. No build step: plain browser JavaScript.
"use strict";

// matplotlib's tab10, the timeline PNG's colours, in class order
const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf"];
const SPAN_S = 30;                       // seconds of history drawn

const params = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
const TOKEN = params.get("token");       // #token=... : sent as a bearer token (and to /stream)
// #min_confidence=0.6 : sent to /stream and /predict (else the server's own threshold, if any)
const MIN_CONFIDENCE = params.get("min_confidence");
const $ = (id) => document.getElementById(id);

let model = null;                        // GET /model
let live = null;                         // {ctx, stream, ws, node}
let hops = [];                           // messages of the current stream, last SPAN_S seconds
window.serHops = [];                     // every hop message received (read by the browser test)

function headers() {
  return TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {};
}

const NO_SPEECH = "no speech";  // the label of a window the speech gate found no speech in
const UNSURE = "unsure";        // the label of a window whose top probability is below min_confidence
const NO_SPEECH_COLOUR = "#98a2b3", NO_SPEECH_STRIP = "#d0d5dd";  // cool greys
const UNSURE_COLOUR = "#a8957a", UNSURE_STRIP = "#d8cbb8";        // warm greys
function colour(i) { return i < 0 ? NO_SPEECH_COLOUR : COLOURS[i % COLOURS.length]; }
// the colour of a label: its class's, or the grey of no speech or of unsure
function labelColour(label) {
  if (label === UNSURE) return UNSURE_COLOUR;
  if (label === NO_SPEECH) return NO_SPEECH_COLOUR;
  return colour(model.classes.indexOf(label));
}
// the threshold in effect: the page's own (#min_confidence=), else the server's
function threshold() {
  const own = parseFloat(MIN_CONFIDENCE);
  return Number.isFinite(own) ? own : model && model.min_confidence;
}
function topProbability(probs) { return Math.max(...Object.values(probs)); }

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function loadModel() {
  const res = await fetch("/model", { headers: headers() });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  model = body;
  $("model").textContent = `${model.classes.length} classes (${model.classes.join(", ")}) · ` +
    `${model.sample_rate / 1000} kHz · model ${model.model_file || "?"}` +
    (model.run ? ` from run ${model.run}` : "");
  $("window-s").textContent = model.window_s;
  $("hop-s").textContent = model.hop_s;
  $("legend").innerHTML = "";
  const entries = model.classes.map((c, i) => [c, colour(i)]);
  if (model.speech_gate) entries.push([NO_SPEECH, NO_SPEECH_STRIP]);
  if (threshold()) entries.push([`${UNSURE} (below ${Math.round(100 * threshold())}%)`, UNSURE_STRIP]);
  entries.forEach(([name, swatch]) => {
    const s = document.createElement("span");
    s.textContent = name;
    s.style.setProperty("--swatch", swatch);
    $("legend").appendChild(s);
  });
  drawBands();
}

// ------------------------------------------------------------------ live stream
async function start() {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const ctx = new AudioContext();
  await ctx.audioWorklet.addModule("/static/worklet.js");
  const source = ctx.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(ctx, "pcm-resampler", {
    processorOptions: { targetRate: model.sample_rate },
  });
  const mute = ctx.createGain();
  mute.gain.value = 0;                   // keeps the graph pulling without playing the voice back
  source.connect(node).connect(mute).connect(ctx.destination);

  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // the token travels as the sub-protocol bearer.<token> (kept out of URLs and logs) when it
  // holds only the characters a sub-protocol may; else as ?token=
  const asProtocol = TOKEN && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(TOKEN);
  const query = `rate=${model.sample_rate}&format=s16le` +
    (MIN_CONFIDENCE ? `&min_confidence=${encodeURIComponent(MIN_CONFIDENCE)}` : "") +
    (TOKEN && !asProtocol ? `&token=${encodeURIComponent(TOKEN)}` : "");
  const ws = new WebSocket(`${scheme}://${location.host}/stream?${query}`,
                           asProtocol ? ["ser", `bearer.${TOKEN}`] : []);
  ws.binaryType = "arraybuffer";
  node.port.onmessage = (e) => { if (ws.readyState === WebSocket.OPEN) ws.send(e.data); };
  ws.onmessage = (e) => onHop(JSON.parse(e.data));
  ws.onclose = (e) => {
    if (live && live.ws === ws) stop(`The server closed the stream (${e.code}${e.reason ? ": " + e.reason : ""}).`);
  };
  ws.onerror = () => status("Cannot reach the server's /stream.", true);
  live = { ctx, stream, ws, node };
  hops = [];
  $("mic").textContent = "Stop";
  $("mic").classList.add("stop");
  status(`Listening: audio at ${ctx.sampleRate} Hz is resampled to ${model.sample_rate} Hz; ` +
         `the first result comes after ${model.window_s} s.`);
}

function stop(message = "Stopped.") {
  if (!live) return;
  const { ctx, stream, ws } = live;
  live = null;
  ws.close();
  stream.getTracks().forEach((t) => t.stop());
  ctx.close();
  $("mic").textContent = "Start listening";
  $("mic").classList.remove("stop");
  status(message);
}

function onHop(hop) {
  if (hop.error) { stop(); status(hop.error, true); return; }
  window.serHops.push(hop);
  hops.push(hop);
  while (hops.length && hops[0].time_s < hop.time_s - SPAN_S) hops.shift();
  $("leading").textContent = hop.label;
  $("leading").style.color = labelColour(hop.label);
  $("leading").dataset.label = hop.label;
  const top = hop.probabilities ? Math.round(100 * topProbability(hop.probabilities)) : 0;
  $("confidence").textContent = (!hop.probabilities
    ? `${Math.round(100 * (hop.speech ?? 0))}% speech · `
    : hop.label === UNSURE ? `top ${top}%, below ${Math.round(100 * threshold())}% · ` : `${top}% · `) +
    `${hop.time_s.toFixed(2)} s into the stream · ${hop.latency_ms.toFixed(0)} ms`;
  const level = hop.level_db ?? -100;
  $("level").style.width = `${Math.max(0, Math.min(100, (level + 60) / 60 * 100))}%`;
  $("level-text").textContent = `${level.toFixed(0)} dBFS`;
  drawBands();
}

// Stacked probabilities: one column per hop, classes bottom to top in model order; an unsure
// column keeps its probabilities beneath a veil of the unsure colour.
function stackColumns(ctx, columns, x0, x1, t0, t1, height) {
  const scale = (x1 - x0) / (t1 - t0);
  for (const { start, end, probs, unsure } of columns) {
    let y = height;
    // whole pixels: fractional edges would leave light seams between neighbouring columns
    const left = Math.floor(x0 + (start - t0) * scale);
    const width = Math.max(1, Math.ceil(x0 + (end - t0) * scale) - left);
    probs.forEach((p, i) => {
      ctx.fillStyle = colour(i);
      ctx.fillRect(left, y - p * height, width, p * height + 0.5);
      y -= p * height;
    });
    if (unsure) {
      ctx.globalAlpha = 0.6;
      ctx.fillStyle = UNSURE_STRIP;
      ctx.fillRect(left, 0, width, height);
      ctx.globalAlpha = 1;
    }
  }
}

function gridLines(ctx, w, h, t0, t1, step) {
  ctx.strokeStyle = "rgba(255,255,255,0.6)";
  ctx.lineWidth = 1;
  for (let t = Math.ceil(t0 / step) * step; t < t1; t += step) {
    const x = Math.round(((t - t0) / (t1 - t0)) * w) + 0.5;
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, h); ctx.stroke();
  }
  ctx.setLineDash([4, 4]);
  ctx.beginPath(); ctx.moveTo(0, h / 2 + 0.5); ctx.lineTo(w, h / 2 + 0.5); ctx.stroke();
  ctx.setLineDash([]);
}

function drawBands() {
  const canvas = $("bands"), ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  if (!model) return;
  if (!hops.length) {
    ctx.fillStyle = "#98a2b3";
    ctx.font = "16px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.fillText("class probabilities of the last 30 s appear here", w / 2, h / 2 + 5);
    return;
  }
  const now = hops[hops.length - 1].time_s, hop = model.hop_s;
  const columns = hops.map((m) => ({ start: m.time_s - hop, end: m.time_s, unsure: m.label === UNSURE,
                                     probs: model.classes.map((c) => (m.probabilities ? m.probabilities[c] : 0)) }));
  stackColumns(ctx, columns, 0, w, now - SPAN_S, now, h);
  gridLines(ctx, w, h, now - SPAN_S, now, 10);
}

// ------------------------------------------------------------------ a recording
async function sendFile(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  if (MIN_CONFIDENCE) form.append("min_confidence", MIN_CONFIDENCE);
  $("file-result").hidden = false;
  $("file-summary").textContent = `Classifying ${file.name}…`;
  $("file-summary").classList.remove("error");
  const res = await fetch("/predict", { method: "POST", body: form, headers: headers() });
  const body = await res.json();
  if (!res.ok) {
    $("file-summary").textContent = body.error || res.statusText;
    $("file-summary").classList.add("error");
    $("strip").innerHTML = "";
    $("timeline").getContext("2d").clearRect(0, 0, $("timeline").width, $("timeline").height);
    return;
  }
  drawRecording(body.recordings[0]);
}

function drawRecording(rec) {
  const whole = rec.recording, line = rec.timeline;
  const top = whole.probabilities ? Math.round(100 * topProbability(whole.probabilities)) : 0;
  const pct = !whole.probabilities ? "no block with enough speech"
    : whole.emotion === UNSURE ? `top ${top}%, below ${Math.round(100 * whole.min_confidence)}%` : `${top}%`;
  const shares = whole.unsure_share === undefined ? "" : `; ${Math.round(100 * whole.unsure_share)}% of its blocks ${UNSURE}` +
    (whole.no_speech_share === undefined ? "" : `, ${Math.round(100 * whole.no_speech_share)}% ${NO_SPEECH}`);
  $("file-summary").innerHTML = "";
  const strong = document.createElement("strong");
  strong.textContent = whole.emotion;
  strong.style.color = labelColour(whole.emotion);
  $("file-summary").append(`${rec.path}: ${rec.duration_s.toFixed(2)} s, overall `, strong,
                           ` (${pct}${shares}), ${line.time_s.length} windows` + (line.note ? ` (${line.note})` : ""));
  const end = Math.max(rec.duration_s, line.time_s.length ? line.time_s[line.time_s.length - 1] + line.window_s / 2 : 0);
  // clear stretches, as the PNG's top strip
  const strip = $("strip");
  strip.innerHTML = "";
  let at = 0;
  const silent = (line.no_speech || []).map((s) => ({ ...s, emotion: NO_SPEECH, mean: null }))
    .concat((line.unsure || []).map((s) => ({ ...s, emotion: UNSURE, mean: null })));
  for (const s of [...line.stretches, ...silent].sort((a, b) => a.start_s - b.start_s)) {
    if (s.start_s > at) strip.appendChild(gap((s.start_s - at) / end));
    const div = document.createElement("div");
    if (s.emotion === NO_SPEECH || s.emotion === UNSURE) {
      div.style.width = `${(100 * (s.end_s - s.start_s)) / end}%`;
      div.style.background = s.emotion === UNSURE ? UNSURE_STRIP : NO_SPEECH_STRIP;
      div.style.color = s.emotion === UNSURE ? "#4d3f2c" : "#344054";
      div.dataset.label = s.emotion;
      if ((s.end_s - s.start_s) / end > 0.07) div.textContent = s.emotion;
      div.title = `${s.start_s}–${s.end_s} s`;
      strip.appendChild(div);
      at = s.end_s;
      continue;
    }
    div.style.width = `${(100 * (s.end_s - s.start_s)) / end}%`;
    div.style.background = labelColour(s.emotion);
    if ((s.end_s - s.start_s) / end > 0.07) div.textContent = `${s.emotion} ${Math.round(100 * s.mean)}%`;
    div.title = `${s.start_s}–${s.end_s} s`;
    strip.appendChild(div);
    at = s.end_s;
  }
  if (!line.stretches.length && !silent.length) {
    strip.appendChild(Object.assign(gap(1), { textContent: "no stretch where one emotion averages 50%" }));
    strip.lastChild.style.color = "#667085";
  }
  const canvas = $("timeline"), ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const half = line.hop_s / 2;
  const columns = line.time_s.map((t, j) => ({
    start: j === 0 ? t - line.window_s / 2 : t - half,
    end: j === line.time_s.length - 1 ? t + line.window_s / 2 : t + half,
    unsure: line.labels[j] === UNSURE,
    probs: model.classes.map((c) => (line.labels[j] === NO_SPEECH ? 0 : line.probabilities[c][j])),
  }));
  stackColumns(ctx, columns, 0, canvas.width, 0, end, canvas.height);
  const step = end > 60 ? 10 : end > 12 ? 2 : end > 4 ? 1 : 0.5;
  gridLines(ctx, canvas.width, canvas.height, 0, end, step);
  const axis = $("timeline-axis");
  axis.innerHTML = "";
  for (let k = 0; k <= 4; k++) {
    const s = document.createElement("span");
    s.textContent = `${((k * end) / 4).toFixed(end < 10 ? 1 : 0)} s`;
    axis.appendChild(s);
  }
}

function gap(fraction) {
  const div = document.createElement("div");
  div.style.width = `${100 * fraction}%`;
  return div;
}

// ------------------------------------------------------------------ wiring
$("mic").addEventListener("click", () => {
  if (live) { stop(); return; }
  start().catch((err) => { stop(); status(`Cannot start the microphone: ${err.message}`, true); });
});
const drop = $("drop");
["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
  e.preventDefault(); drop.classList.add("over");
}));
["dragleave", "drop"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  if (e.dataTransfer.files.length) sendFile(e.dataTransfer.files[0]);
});
$("file").addEventListener("change", (e) => { if (e.target.files.length) sendFile(e.target.files[0]); });
window.addEventListener("resize", drawBands);

loadModel().catch((err) => {
  $("model").textContent = `Cannot load the model description: ${err.message}`;
  $("model").classList.add("error");
});
