// The `mlflow` npm client (2.0.7, third party) against a real `kiln server`, unchanged.
// Usage: KILN_BIN=build/bin/kiln node --test   (tests/run-integration.sh sets KILN_BIN and,
// for the PostgreSQL pass, KILN_STORE).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const MLflow = require('mlflow');  // the package's entry exports the client class
const { MLflowBase } = require('mlflow/lib/mlflow');

assert.ok(process.env.KILN_BIN, 'KILN_BIN must point at the kiln binary');
const kiln = resolve(process.env.KILN_BIN);  // the server runs in another folder

let server;
let endpoint;
let workdir;
const log = console.log;

before(async () => {
  workdir = mkdtempSync(join(tmpdir(), 'kiln-npm-'));
  const env = { ...process.env };
  if (env.KILN_STORE) {
    env.KILN_OBJECTS = join(workdir, 'objects');
  } else {
    execFileSync(kiln, ['init', workdir], { stdio: 'ignore' });
  }
  server = spawn(kiln, ['server', '--host', '127.0.0.1', '--port', '0'], { cwd: workdir, env });
  endpoint = await new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error('kiln server did not start: ' + seen)), 20000);
    const onData = (chunk) => {
      seen += chunk.toString();
      const match = seen.match(/listening on (http:\/\/[0-9.]+:\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    server.stdout.on('data', onData);
    server.stderr.on('data', onData);
    server.on('error', (error) => reject(new Error(`cannot start ${kiln}: ${error.message}`)));
    server.on('exit', (code) => reject(new Error(`kiln server exited ${code}: ${seen}`)));
  });
  console.log = () => {};  // the client logs every request body; keep test output readable
});

after(() => {
  console.log = log;
  if (server) server.kill('SIGTERM');
  if (workdir) rmSync(workdir, { recursive: true, force: true });
});

function httpStatusOf(error) {
  // The client throws Error(Error(JSON.stringify({status, statusText, data}))).
  const text = String(error.message).replace(/^Error: /, '');
  return JSON.parse(text);
}

test('experiments: create, get, update, delete, restore', async () => {
  const mlflow = new MLflow({ endpoint });
  const { experiment_id } = await mlflow.Experiments.create({ name: 'npm-exp' });
  assert.match(experiment_id, /^\d+$/);
  const { experiment } = await mlflow.Experiments.get({ experiment_id });
  assert.equal(experiment.name, 'npm-exp');
  assert.equal(experiment.lifecycle_stage, 'active');
  await mlflow.Experiments.update({ experiment_id, new_name: 'npm-exp-renamed' });
  assert.equal((await mlflow.Experiments.get({ experiment_id })).experiment.name, 'npm-exp-renamed');
  await mlflow.Experiments.delete({ experiment_id });
  assert.equal((await mlflow.Experiments.get({ experiment_id })).experiment.lifecycle_stage, 'deleted');
  await mlflow.Experiments.restore({ experiment_id });
  assert.equal((await mlflow.Experiments.get({ experiment_id })).experiment.lifecycle_stage, 'active');
});

test('a taken experiment name is RESOURCE_ALREADY_EXISTS with status 400', async () => {
  const mlflow = new MLflow({ endpoint });
  await mlflow.Experiments.create({ name: 'dup' });
  await assert.rejects(mlflow.Experiments.create({ name: 'dup' }), (error) => {
    const { status, data } = httpStatusOf(error);
    assert.equal(status, 400);
    assert.equal(data.error_code, 'RESOURCE_ALREADY_EXISTS');
    return true;
  });
});

test('the client bugs behave as against MLflow: experiments/list and set-experiment-tag are 404', async () => {
  const mlflow = new MLflow({ endpoint });
  await assert.rejects(mlflow.Experiments.list({}), (e) => httpStatusOf(e).status === 404);
  await assert.rejects(
    mlflow.Experiments.setExperimentTag({ experiment_id: '0', key: 'k', value: 'v' }),
    (e) => httpStatusOf(e).status === 404);
});

test('runs: log metrics, params, tags and batches, then read them back', async () => {
  const mlflow = new MLflow({ endpoint });
  const { experiment_id } = await mlflow.Experiments.create({ name: 'npm-runs' });
  const { run } = await mlflow.Runs.create({
    experiment_id, user_id: 'npm', start_time: 1700000000000,
    tags: [{ key: 'mlflow.runName', value: 'first' }],
  });
  const run_id = run.info.run_id;
  assert.equal(run.info.run_name, 'first');
  assert.equal(run.info.status, 'RUNNING');
  await mlflow.Runs.logMetric({ run_id, key: 'auc', value: 0.5, timestamp: 1, step: 0 });
  await mlflow.Runs.logMetric({ run_id, key: 'auc', value: 0.75, timestamp: 2, step: 1 });
  await mlflow.Runs.logParameter({ run_id, key: 'model', value: 'xgb' });
  await mlflow.Runs.setTag({ run_id, key: 'team', value: 'risk' });
  await mlflow.Runs.setTag({ run_id, key: 'scratch', value: 'x' });
  await mlflow.Runs.deleteTag({ run_id, key: 'scratch' });
  await mlflow.Runs.logBatch({
    run_id,
    metrics: [{ key: 'loss', value: 0.25, timestamp: 3, step: 0 }],
    params: [{ key: 'depth', value: '6' }],
    tags: [{ key: 'stage', value: 'dev' }],
  });
  const got = (await mlflow.Runs.get({ run_id })).run;
  const metrics = Object.fromEntries(got.data.metrics.map((m) => [m.key, m.value]));
  assert.deepEqual(metrics, { auc: 0.75, loss: 0.25 });
  const params = Object.fromEntries(got.data.params.map((p) => [p.key, p.value]));
  assert.deepEqual(params, { model: 'xgb', depth: '6' });
  const tags = Object.fromEntries(got.data.tags.map((t) => [t.key, t.value]));
  assert.equal(tags.team, 'risk');
  assert.equal(tags.stage, 'dev');
  assert.equal(tags.scratch, undefined);

  const history = await mlflow.Metrics.getHistory({ run_id, metric_key: 'auc' });
  assert.deepEqual(history.metrics.map((m) => [m.step, m.value]), [[0, 0.5], [1, 0.75]]);

  const updated = await mlflow.Runs.update({ run_id, status: 'FINISHED', end_time: 1700000005000 });
  assert.equal(updated.run_info.status, 'FINISHED');
  assert.equal(updated.run_info.end_time, 1700000005000);

  const listing = await mlflow.Artifacts.list({ run_id });
  assert.match(listing.root_uri, new RegExp(run_id));
});

test('runs: search with filter, order and paging; delete and restore', async () => {
  const mlflow = new MLflow({ endpoint });
  const { experiment_id } = await mlflow.Experiments.create({ name: 'npm-search' });
  const ids = [];
  for (let i = 0; i < 5; i++) {
    const { run } = await mlflow.Runs.create({ experiment_id, start_time: 1000 + i });
    ids.push(run.info.run_id);
    await mlflow.Runs.logBatch({
      run_id: run.info.run_id,
      metrics: [{ key: 'auc', value: 0.8 + i * 0.04, timestamp: 1, step: 0 }],
      params: [{ key: 'model', value: i % 2 === 0 ? 'xgb' : 'linear' }],
    });
  }
  const found = await mlflow.Runs.search({
    experiment_ids: [experiment_id],
    filter: "metrics.auc > 0.85 AND params.model = 'xgb'",
    order_by: ['metrics.auc DESC'],
  });
  assert.deepEqual(found.runs.map((r) => r.info.run_id), [ids[4], ids[2]]);

  const page1 = await mlflow.Runs.search({ experiment_ids: [experiment_id], max_results: 2 });
  assert.equal(page1.runs.length, 2);
  assert.ok(page1.next_page_token);
  const page2 = await mlflow.Runs.search({
    experiment_ids: [experiment_id], max_results: 2, page_token: page1.next_page_token });
  assert.equal(page2.runs.length, 2);
  assert.notDeepEqual(page1.runs.map((r) => r.info.run_id), page2.runs.map((r) => r.info.run_id));

  await mlflow.Runs.delete({ run_id: ids[0] });
  const active = await mlflow.Runs.search({ experiment_ids: [experiment_id] });
  assert.equal(active.runs.length, 4);
  await mlflow.Runs.restore({ run_id: ids[0] });
  assert.equal((await mlflow.Runs.search({ experiment_ids: [experiment_id] })).runs.length, 5);

  await assert.rejects(
    mlflow.Runs.search({ experiment_ids: [experiment_id], filter: 'metrics.auc ~ 1' }),
    (e) => { const { status, data } = httpStatusOf(e); return status === 400 && data.error_code === 'INVALID_PARAMETER_VALUE'; });
});

test('unknown run is RESOURCE_DOES_NOT_EXIST with status 404', async () => {
  const mlflow = new MLflow({ endpoint });
  await assert.rejects(mlflow.Runs.get({ run_id: '0123456789abcdef0123456789abcdef' }), (e) => {
    const { status, data } = httpStatusOf(e);
    return status === 404 && data.error_code === 'RESOURCE_DOES_NOT_EXIST';
  });
});

test('registry paths through the client transport', async () => {
  class Registry extends MLflowBase {
    constructor(args) { super(args); this.path = '/registered-models'; }
  }
  class Versions extends MLflowBase {
    constructor(args) { super(args); this.path = '/model-versions'; }
  }
  const models = new Registry({ endpoint });
  const versions = new Versions({ endpoint });
  const { registered_model } = await models.req('post', '/create', { name: 'npm-model' });
  assert.equal(registered_model.name, 'npm-model');
  const { model_version } = await versions.req('post', '/create', { name: 'npm-model', source: 'mlflow-artifacts:/x' });
  assert.equal(model_version.version, '1');
  await models.req('post', '/alias', { name: 'npm-model', alias: 'champion', version: '1' });
  const byAlias = await models.req('get', '/alias', { name: 'npm-model', alias: 'champion' });
  assert.equal(byAlias.model_version.version, '1');
  const staged = await versions.req('post', '/transition-stage', {
    name: 'npm-model', version: '1', stage: 'Production', archive_existing_versions: false });
  assert.equal(staged.model_version.current_stage, 'Production');
  const latest = await models.req('post', '/get-latest-versions', { name: 'npm-model', stages: ['Production'] });
  assert.deepEqual(latest.model_versions.map((v) => v.version), ['1']);
});
