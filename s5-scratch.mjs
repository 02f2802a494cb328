import Database from 'better-sqlite3';
const db = new Database('/tmp/rss/big.db');
const q = `SELECT query_class, model_key, instance_id, COUNT(*), SUM(outcome='success'), SUM(feedback IS NOT NULL), SUM(feedback), group_concat(latency_ms), SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_usd), MAX(time) FROM traces NOT INDEXED GROUP BY query_class, model_key, instance_id`;
const res=[];
for (let rep=0; rep<2; rep++) for (const cache of [-500,-1000,-2000,-4000,-8000]) for (const threads of [2,4]) {
  db.pragma(`cache_size=${cache}`); db.pragma(`threads=${threads}`);
  const s=performance.now(); db.prepare(q).all(); const ms=performance.now()-s;
  res.push(`${cache}/${threads}: ${ms.toFixed(0)}`);
}
console.log(res.join('  '));
