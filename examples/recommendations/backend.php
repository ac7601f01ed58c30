<?php
// The recommendations seed app's backend: plain PHP (Debian's php-cli), no framework, run as
//   php -S 127.0.0.1:8090 examples/recommendations/backend.php
// The Troupe engine (started with --backend http://127.0.0.1:8090 --backend-secret S) calls:
//   POST /rpc     {client, user, method, data}: the browser's rpc("interaction", {product, action})
//   POST /events  {events: [{id, time_ms, name, room, user?, client?, data?}]}: webhooks
// both signed with X-Troupe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(S, "t.body")>.
// An interaction updates a small co-occurrence model (what users viewed together) and the
// user's new recommendations are published to the room user:<id> through the engine's
// POST /api/publish, so they show in every tab of that user and nowhere else.
//
// Settings, from the environment (examples/recommendations/run.sh sets them):
//   BACKEND_SECRET  the engine's --backend-secret (required: unsigned calls are refused)
//   ENGINE_URL      the engine's HTTP address, e.g. http://127.0.0.1:8080
//   ENGINE_API_KEY  the engine's --api-key
//   DATA_DIR        where the model and the webhook log are kept (default: a folder under
//                   sys_get_temp_dir())

declare(strict_types=1);

const MAX_AGE_S = 300;  // a signature older than this (or this far ahead) is refused
const TOP_N = 3;        // recommendations per update

$SECRET = (string) getenv('BACKEND_SECRET');
$ENGINE_URL = rtrim((string) (getenv('ENGINE_URL') ?: 'http://127.0.0.1:8080'), '/');
$API_KEY = (string) getenv('ENGINE_API_KEY');
$DATA_DIR = (string) (getenv('DATA_DIR') ?: sys_get_temp_dir() . '/troupe-recommendations');
$CATALOG_FILE = __DIR__ . '/web/products.json';

// ---- the "AI service" ----------------------------------------------------------------------

/**
 * The user's recommendations: [{id, name, score, reason}], best first, at most TOP_N.
 *
 * THIS IS THE PLACE TO CALL A REAL MODEL. The seed scores with item-to-item co-occurrence
 * ("people who viewed what you viewed also viewed …"), the classic baseline. To use an
 * embedding model, a hosted recommender or an LLM instead, keep the signature: send the
 * user's history ($model['users'][$user]) and the catalog to it (e.g. with
 * file_get_contents and a stream context, as publish() does) and return its picks in the
 * same shape. It runs inside the RPC call, so keep it well under the engine's
 * --backend-timeout (5 s by default), or publish from a queue worker instead.
 *
 * @param string $user   the user id, as verified by the engine
 * @param array  $model  ['users' => [user => [product => weight]], 'co' => [a => [b => count]]]
 * @param array  $catalog [product id => ['id', 'name', 'category', 'price']]
 */
function recommend(string $user, array $model, array $catalog): array
{
    $mine = $model['users'][$user] ?? [];
    $scores = [];
    $because = [];
    foreach ($mine as $item => $weight) {
        foreach ($model['co'][$item] ?? [] as $other => $count) {
            if (isset($mine[$other]) || !isset($catalog[$other])) {
                continue; // already seen, or no longer sold
            }
            $s = $count * $weight;
            $scores[$other] = ($scores[$other] ?? 0) + $s;
            if ($s > ($because[$other][1] ?? 0)) {
                $because[$other] = [$item, $s];
            }
        }
    }
    // Best score first; ties by id, so the same model always gives the same answer.
    uksort($scores, fn ($a, $b) => [$scores[$b], $a] <=> [$scores[$a], $b]);
    $out = [];
    foreach (array_slice($scores, 0, TOP_N, true) as $id => $score) {
        $out[] = [
            'id' => $id,
            'name' => $catalog[$id]['name'],
            'score' => $score,
            'reason' => 'viewed with ' . $catalog[$because[$id][0]]['name'],
        ];
    }
    return $out;
}

/** Records that $user did $action on $product: co-occurrence with what the user saw before. */
function learn(array &$model, string $user, string $product, string $action): void
{
    $weight = $action === 'added' ? 2 : 1; // a cart add says more than a view
    $seen = $model['users'][$user] ?? [];
    if (!isset($seen[$product])) {
        foreach (array_keys($seen) as $other) {
            $model['co'][$product][$other] = ($model['co'][$product][$other] ?? 0) + 1;
            $model['co'][$other][$product] = ($model['co'][$other][$product] ?? 0) + 1;
        }
    }
    $model['users'][$user][$product] = max($seen[$product] ?? 0, $weight);
}

// ---- storage: one JSON file, locked ---------------------------------------------------------

function catalog(string $file): array
{
    $json = json_decode((string) file_get_contents($file), true, 512, JSON_THROW_ON_ERROR);
    $byId = [];
    foreach ($json['products'] as $p) {
        $byId[$p['id']] = $p;
    }
    return [$byId, $json['seed_sessions'] ?? []];
}

/** Runs $fn(&$model) with the model file locked, and saves what it leaves. */
function with_model(string $dir, array $seedSessions, callable $fn)
{
    if (!is_dir($dir)) {
        mkdir($dir, 0700, true);
    }
    $fh = fopen("$dir/model.json", 'c+');
    flock($fh, LOCK_EX);
    try {
        $text = stream_get_contents($fh);
        $model = $text ? json_decode($text, true) : null;
        if (!is_array($model)) {
            // A fresh model starts from a few past sessions, so there is something to learn from.
            $model = ['users' => [], 'co' => []];
            foreach ($seedSessions as $i => $session) {
                foreach ($session as $product) {
                    learn($model, "seed-$i", $product, 'viewed');
                }
            }
        }
        $result = $fn($model);
        ftruncate($fh, 0);
        rewind($fh);
        fwrite($fh, json_encode($model, JSON_PRETTY_PRINT));
        fflush($fh);
        return $result;
    } finally {
        flock($fh, LOCK_UN);
        fclose($fh);
    }
}

// ---- the engine's signature -----------------------------------------------------------------

/** True if $header (X-Troupe-Signature) signs $body with $secret within MAX_AGE_S of $now. */
function verify_signature(string $secret, string $header, string $body, int $now): bool
{
    $t = null;
    $signatures = [];
    foreach (explode(',', $header) as $part) {
        [$k, $v] = array_pad(explode('=', trim($part), 2), 2, '');
        if ($k === 't' && ctype_digit($v)) {
            $t = (int) $v;
        } elseif ($k === 'v1') {
            $signatures[] = $v;
        }
    }
    if ($secret === '' || $t === null || abs($now - $t) > MAX_AGE_S) {
        return false;
    }
    $expected = hash_hmac('sha256', "$t.$body", $secret);
    foreach ($signatures as $sig) {
        if (hash_equals($expected, $sig)) { // constant time
            return true;
        }
    }
    return false;
}

// ---- the engine's HTTP API ------------------------------------------------------------------

/** POST /api/publish {room, data}; returns the seq, or throws. */
function publish(string $engineUrl, string $apiKey, string $room, $data): int
{
    $context = stream_context_create(['http' => [
        'method' => 'POST',
        'header' => "Content-Type: application/json\r\nAuthorization: apikey $apiKey\r\n",
        'content' => json_encode(['room' => $room, 'data' => $data]),
        'timeout' => 3,
        'ignore_errors' => true, // read the body of a 4xx too
    ]]);
    $body = @file_get_contents("$engineUrl/api/publish", false, $context);
    $status = isset($http_response_header[0]) && preg_match('#^HTTP/\S+ (\d+)#', $http_response_header[0], $m)
        ? (int) $m[1] : 0;
    if ($body === false || $status !== 200) {
        throw new RuntimeException("publish to $room failed: HTTP $status " . ($body ?: 'no reply'));
    }
    return (int) (json_decode($body, true)['seq'] ?? 0);
}

// ---- the two routes -------------------------------------------------------------------------

function reply(int $status, array $body): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($body, JSON_UNESCAPED_SLASHES);
}

function log_line(string $dir, string $line): void
{
    if (!is_dir($dir)) {
        mkdir($dir, 0700, true);
    }
    $stamped = gmdate('Y-m-d\TH:i:s\Z') . " $line\n";
    file_put_contents("$dir/events.log", $stamped, FILE_APPEND | LOCK_EX);
    file_put_contents('php://stderr', $stamped);
}

function handle_rpc(array $call): void
{
    global $ENGINE_URL, $API_KEY, $DATA_DIR, $CATALOG_FILE;
    $user = (string) ($call['user'] ?? '');
    $method = (string) ($call['method'] ?? '');
    $data = $call['data'] ?? null;
    if ($method !== 'interaction') {
        reply(404, ['error' => 'not_found', 'reason' => "no method '$method'"]);
        return;
    }
    [$catalog, $seedSessions] = catalog($CATALOG_FILE);
    $product = is_array($data) ? (string) ($data['product'] ?? '') : '';
    $action = is_array($data) ? (string) ($data['action'] ?? '') : '';
    if (!isset($catalog[$product]) || !in_array($action, ['viewed', 'added'], true) || $user === '') {
        reply(400, ['error' => 'bad_request', 'reason' => 'data must be {product: a known id, action: "viewed"|"added"}']);
        return;
    }
    $items = with_model($DATA_DIR, $seedSessions, function (array &$model) use ($user, $product, $action, $catalog) {
        learn($model, $user, $product, $action);
        return recommend($user, $model, $catalog);
    });
    try {
        publish($ENGINE_URL, $API_KEY, "user:$user", [
            'type' => 'recommendations',
            'items' => $items,
            'after' => ['product' => $product, 'action' => $action],
        ]);
    } catch (RuntimeException $e) {
        log_line($DATA_DIR, 'error: ' . $e->getMessage());
        reply(503, ['error' => 'unavailable', 'reason' => 'could not publish the recommendations']);
        return;
    }
    reply(200, ['data' => ['ok' => true]]);
}

function handle_events(array $call): void
{
    global $DATA_DIR;
    // Delivery is at least once: an event id seen before is acknowledged and not logged again.
    $seenFile = "$DATA_DIR/events-seen.json";
    $seen = is_file($seenFile) ? (json_decode((string) file_get_contents($seenFile), true) ?: []) : [];
    foreach ($call['events'] ?? [] as $e) {
        $id = (string) ($e['id'] ?? '');
        if ($id === '' || isset($seen[$id])) {
            continue;
        }
        $seen[$id] = true;
        $line = 'webhook ' . ($e['name'] ?? '?');
        foreach (['room', 'user', 'client', 'id'] as $field) {
            if (isset($e[$field]) && $e[$field] !== '') {
                $line .= " $field=" . $e[$field];
            }
        }
        log_line($DATA_DIR, $line);
    }
    $seen = array_slice($seen, -10000, null, true); // keep the newest ids only
    file_put_contents($seenFile, json_encode($seen), LOCK_EX);
    reply(200, ['ok' => true]);
}

// ---- routing --------------------------------------------------------------------------------

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH);
if ($_SERVER['REQUEST_METHOD'] !== 'POST' || !in_array($path, ['/rpc', '/events'], true)) {
    reply(404, ['error' => 'not_found', 'reason' => 'POST /rpc or /events']);
    return;
}
$body = (string) file_get_contents('php://input');
if (!verify_signature($SECRET, (string) ($_SERVER['HTTP_X_TROUPE_SIGNATURE'] ?? ''), $body, time())) {
    log_line($DATA_DIR, "refused $path: missing, wrong or stale X-Troupe-Signature");
    reply(401, ['error' => 'unauthorized', 'reason' => 'bad signature']);
    return;
}
$call = json_decode($body, true);
if (!is_array($call)) {
    reply(400, ['error' => 'bad_request', 'reason' => 'the body is not a JSON object']);
    return;
}
$path === '/rpc' ? handle_rpc($call) : handle_events($call);
