/**
 * Child process: what reads a gateway's stdout in production (a container runtime's log driver,
 * a log shipper). The gateway logs at its default level, info (an access and an audit line per
 * request), into a pipe this process reads to the end, so that writing those lines costs what it
 * costs in a container and the pipe never fills. Lines at warn and above (pino levels 40+) and
 * any line that is not pino's are passed on to this process's stdout, where the benchmark counts
 * them as warnings; info and below are dropped after a glance at their first bytes.
 */
const QUIET_LEVEL = /^\{"level":[123]\d,/;

let partial = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  const lines = (partial + chunk).split('\n');
  partial = lines.pop()!;
  let kept = '';
  for (const line of lines) if (line.length > 0 && !QUIET_LEVEL.test(line)) kept += `${line}\n`;
  if (kept.length > 0) process.stdout.write(kept);
});
process.stdin.on('end', () => {
  if (partial.length > 0 && !QUIET_LEVEL.test(partial)) process.stdout.write(`${partial}\n`);
});
