// AudioWorklet: the microphone's samples at the audio context's rate -> 16-bit PCM at the
// model's rate, posted to the page in frames of about 50 ms.
//
// Resampling: when downsampling, a windowed-sinc low-pass (cut-off just under the model's
// Nyquist frequency) first removes what would alias, then each output sample is read between
// two input samples by linear interpolation. State (filter history, read position) carries
// across the 128-sample render quanta, so there are no seams between them.
class PcmResampler extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.target = options.processorOptions.targetRate;
    this.ratio = sampleRate / this.target;        // input samples per output sample
    const taps = this.ratio > 1 ? 63 : 1;
    const cutoff = this.ratio > 1 ? 0.92 / (2 * this.ratio) : 0.5;  // cycles per input sample
    this.kernel = new Float32Array(taps);
    let sum = 0;
    for (let i = 0; i < taps; i++) {
      const n = i - (taps - 1) / 2;
      const sinc = n === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * n) / (Math.PI * n);
      const hann = taps > 1 ? 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (taps - 1)) : 1;
      this.kernel[i] = sinc * hann;
      sum += this.kernel[i];
    }
    for (let i = 0; i < taps; i++) this.kernel[i] /= sum;
    this.history = new Float32Array(taps);        // the last `taps` input samples, a ring
    this.head = 0;
    this.prev = 0;                                // the previous filtered sample
    this.pos = 0;                                 // next output position, in filtered samples
    this.frame = new Int16Array(Math.round(this.target * 0.05));
    this.fill = 0;
  }

  filtered(x) {
    const h = this.history, k = this.kernel, n = k.length;
    h[this.head] = x;
    this.head = (this.head + 1) % n;
    let acc = 0;
    for (let i = 0; i < n; i++) acc += k[i] * h[(this.head + i) % n];
    return acc;
  }

  emit(value) {
    const v = Math.max(-1, Math.min(1, value));
    this.frame[this.fill++] = v < 0 ? v * 32768 : v * 32767;
    if (this.fill === this.frame.length) {
      this.port.postMessage(this.frame.buffer.slice(0));
      this.fill = 0;
    }
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const n = channels[0].length;
    for (let i = 0; i < n; i++) {
      let x = 0;
      for (let c = 0; c < channels.length; c++) x += channels[c][i];
      const y = this.filtered(x / channels.length);
      // output samples falling between the previous filtered sample (at -1) and this one (at 0)
      while (this.pos < 1) {
        this.emit(this.prev + (y - this.prev) * this.pos);
        this.pos += this.ratio;
      }
      this.pos -= 1;
      this.prev = y;
    }
    return true;
  }
}

registerProcessor("pcm-resampler", PcmResampler);
