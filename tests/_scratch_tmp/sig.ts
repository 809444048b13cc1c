const s = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
  const t = performance.now();
  req.signal.addEventListener("abort", () => console.log("server: req.signal aborted after", Math.round(performance.now() - t)));
  await new Promise((r) => setTimeout(r, 1500));
  console.log("server: handler done, aborted =", req.signal.aborted);
  return new Response("x");
});
const ac = new AbortController();
const p = fetch(`http://127.0.0.1:${s.addr.port}/`, { signal: ac.signal });
await new Promise((r) => setTimeout(r, 200));
ac.abort();
await p.catch((e) => console.log("client:", e.name));
await new Promise((r) => setTimeout(r, 2000));
await s.shutdown();
