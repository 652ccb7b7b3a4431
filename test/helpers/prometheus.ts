// Reading Prometheus exposition text in tests: every sample as `name{labels}` -> value.

export function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

/** A sample's value; 0 when the series is absent. */
export const sampleValue = (s: Map<string, number>, key: string): number => s.get(key) ?? 0;

/** GET /metrics of a server's ops listener, parsed. */
export async function scrape(metricsAddress: string | undefined): Promise<Map<string, number>> {
  if (!metricsAddress) throw new Error('the server has no metrics listener (metricsAddress)');
  const res = await fetch(`http://${metricsAddress}/metrics`);
  return samples(await res.text());
}
