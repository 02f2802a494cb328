/** A small seeded random source for exploration: mulberry32 uniforms, Box–Muller normals, Marsaglia–Tsang gammas. */
export class Random {
  private state: number;
  private spareNormal = NaN;

  /** Without a seed the sequence starts from Math.random(). */
  constructor(seed?: number) {
    this.state = (seed ?? Math.floor(Math.random() * 0x1_0000_0000)) >>> 0;
  }

  /** Uniform in the open interval (0, 1), so it is safe under log(). */
  uniform(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 0x1_0000_0000;
  }

  /** Standard normal. */
  normal(): number {
    if (!Number.isNaN(this.spareNormal)) {
      const z = this.spareNormal;
      this.spareNormal = NaN;
      return z;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const phi = 2 * Math.PI * this.uniform();
    this.spareNormal = r * Math.sin(phi);
    return r * Math.cos(phi);
  }

  /** Gamma(shape, 1), shape > 0 (Marsaglia & Tsang 2000; shape < 1 by the u^(1/shape) boost). */
  gamma(shape: number): number {
    if (shape < 1) return this.gamma(shape + 1) * Math.pow(this.uniform(), 1 / shape);
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      let v = 1 + c * x;
      if (v <= 0) continue;
      v = v * v * v;
      const u = this.uniform();
      const x2 = x * x;
      if (u < 1 - 0.0331 * x2 * x2) return d * v;
      if (Math.log(u) < 0.5 * x2 + d * (1 - v + Math.log(v))) return d * v;
    }
  }

  /** Beta(a, b), a, b > 0, as X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b). */
  beta(a: number, b: number): number {
    const x = this.gamma(a);
    const y = this.gamma(b);
    return x / (x + y);
  }
}
