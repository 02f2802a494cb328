/** A one-line progress bar on stderr, drawn only when stderr is a terminal. */
export interface Progress {
  update(done: number, total: number): void;
  finish(): void;
}

const WIDTH = 30;

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update() {}, finish() {} };
  let shown = -1;
  let drawn = false;
  return {
    update(done, total) {
      const permille = total > 0 ? Math.floor((done / total) * 1000) : 1000;
      if (permille === shown) return;
      shown = permille;
      const filled = Math.round((permille / 1000) * WIDTH);
      stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${(permille / 10).toFixed(1)}% (${done}/${total})`);
      drawn = true;
    },
    finish() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
