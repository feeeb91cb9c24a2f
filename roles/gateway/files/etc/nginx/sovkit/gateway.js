// sovkit gateway: authenticates a tenant by the SHA-256 of its API key, lets it reach only its models, on the
// model servers' OpenAI routes only, and hands the request to that model's vLLM. Every error is OpenAI-shaped, as
// vLLM's own are: {"error": {"message", "type", "param", "code"}}. Tenants come from tenants.json (hashes, never
// keys): {"keys": {sha256-hex: tenant}, "models": {tenant: {model: true}}, "routes": {path: "json" | "form"},
// "serves": {model: {path: true}}, "upstreams": {model: upstream pool}, "budgeted": {tenant: true},
// "budget_marks": folder} (maps, not lists: njs preloads objects frozen, without array methods). A budgeted tenant
// whose budget is spent has a mark in that folder, written by the budget keeper: {"until": seconds since the epoch,
// "period": "day" or "month"}.
// Each answered request's token usage, as the model server counted it, goes to the access log for chargeback.
var crypto = require('crypto');
var fs = require('fs');

// Per request: njs gives every request its own copy of the module's state.
var held = null;  // a streamed response's bytes after its last complete event
var tail = null;  // a whole response's last bytes, where the model server writes its usage
var TAIL_BYTES = 4096;

function reply(r, status, message, type, param) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({error: {message: message, type: type, param: param || null, code: status}}));
}

// The scheme is case-insensitive (RFC 9110); the key is the one token after it.
function tenantOf(r) {
    var found = /^bearer[ \t]+([^ \t]+)[ \t]*$/i.exec(r.headersIn.Authorization || '');
    if (found === null) {
        return null;
    }
    var digest = crypto.createHash('sha256').update(found[1]).digest('hex');
    return sovkit_tenants.keys[digest] || null;
}

// A model the tenant may not use is, to that tenant, a model that does not exist: one answer for both.
function noSuchModel(r, model) {
    return reply(r, 404, 'The model `' + model + '` does not exist or you do not have access to it.',
                 'invalid_request_error', 'model');
}

function modelObject(name) {
    return {id: name, object: 'model', created: 0, owned_by: 'sovkit'};
}

function listModels(r, allowed) {
    r.headersOut['Content-Type'] = 'application/json';
    var data = Object.keys(allowed).sort().map(modelObject);
    return r.return(200, JSON.stringify({object: 'list', data: data}));
}

function route(r) {
    var listing = r.uri === '/v1/models' || r.uri.slice(0, 11) === '/v1/models/';
    // Paths first, for every caller: what the gateway does not route is no secret, and vLLM's own
    // unauthenticated routes answer 404 whoever asks.
    var kind = sovkit_tenants.routes[r.uri];  // what the route's body is: JSON, or a multipart form (audio)
    if (!listing && kind === undefined) {
        return reply(r, 404, 'Unknown request URL: ' + r.method + ' ' + r.uri + '.', 'invalid_request_error');
    }
    var tenant = tenantOf(r);
    if (tenant === null) {
        r.headersOut['WWW-Authenticate'] = 'Bearer';
        return reply(r, 401, 'Incorrect API key provided (Authorization: Bearer <key>).', 'authentication_error');
    }
    r.variables.sovkit_tenant = tenant;
    var allowed = sovkit_tenants.models[tenant];
    if (listing) {
        if (r.method !== 'GET') {
            r.headersOut.Allow = 'GET';
            return reply(r, 405, 'Use GET on ' + r.uri + '.', 'invalid_request_error');
        }
        if (r.uri === '/v1/models') {
            return listModels(r, allowed);
        }
        var id = r.uri.slice(11);  // nginx has decoded and normalised the path
        if (allowed[id] !== true) {
            return noSuchModel(r, id);
        }
        r.headersOut['Content-Type'] = 'application/json';
        return r.return(200, JSON.stringify(modelObject(id)));
    }
    if (r.method !== 'POST') {
        r.headersOut.Allow = 'POST';
        return reply(r, 405, 'Use POST on ' + r.uri + '.', 'invalid_request_error');
    }
    var body = null, model;
    if (kind === 'form') {
        model = formModel(r);
        if (model === null) {
            return reply(r, 400, 'The body must be a multipart form with a model field.', 'invalid_request_error',
                         'model');
        }
    } else {
        try {
            body = JSON.parse(r.requestText || '');
            model = body.model;
        } catch (e) {
            return reply(r, 400, 'The body must be a JSON object with a model field.', 'invalid_request_error');
        }
        if (typeof model !== 'string') {
            return reply(r, 400, 'The body names no model.', 'invalid_request_error', 'model');
        }
    }
    if (allowed[model] !== true || !(model in sovkit_tenants.upstreams)) {
        return noSuchModel(r, model);
    }
    if (sovkit_tenants.serves[model][r.uri] !== true) {  // another task's route: the gateway says so, not vLLM
        return reply(r, 404, 'The model `' + model + '` does not serve ' + r.method + ' ' + r.uri + '.',
                     'invalid_request_error', 'model');
    }
    r.variables.sovkit_model = model;
    if (sovkit_tenants.budgeted[tenant] === true) {
        var spent = spentBudget(tenant);
        if (spent !== null) {
            return budgetSpent(r, spent);
        }
    }
    r.variables.sovkit_upstream = sovkit_tenants.upstreams[model];
    if (kind === 'form') {
        return r.internalRedirect('@vllm_form');  // the upload goes on byte for byte
    }
    r.variables.sovkit_body = bodyAskingUsage(r, body);
    r.internalRedirect('@vllm');
}

// The model a multipart form names (RFC 7578): the value of its part named "model". Found in the raw bytes
// (r.requestBuffer): the audio in the same form is skipped, never decoded as text.
function formModel(r) {
    var type = r.headersIn['Content-Type'] || '';
    var found = /^multipart\/form-data;.*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(type);
    var raw = r.requestBuffer;
    if (!found || !raw) {
        return null;
    }
    var delimiter = '--' + (found[1] || found[2]);
    var at = raw.indexOf(delimiter);
    while (at >= 0) {
        var headersEnd = raw.indexOf('\r\n\r\n', at);
        if (headersEnd < 0) {
            return null;
        }
        var headers = raw.slice(at, headersEnd).toString();
        if (/\r\ncontent-disposition:[ \t]*form-data;[ \t]*name="model"[ \t]*(;|\r|$)/i.test(headers)) {
            var end = raw.indexOf('\r\n' + delimiter, headersEnd + 4);
            return end < 0 ? null : raw.slice(headersEnd + 4, end).toString();
        }
        at = raw.indexOf(delimiter, headersEnd + 4);
    }
    return null;
}

// The keeper's mark while it holds (a mark whose time has passed is the keeper's to remove), else null.
function spentBudget(tenant) {
    var mark;
    try {
        mark = JSON.parse(fs.readFileSync(sovkit_tenants.budget_marks + '/' + tenant));
    } catch (e) {
        return null;  // no mark: tokens left (or the keeper is not running)
    }
    return mark.until * 1000 > Date.now() ? mark : null;
}

function budgetSpent(r, mark) {
    var wait = Math.max(1, Math.ceil(mark.until - Date.now() / 1000));
    r.headersOut['Retry-After'] = String(wait);
    var renews = new Date(mark.until * 1000).toISOString().slice(0, 19) + 'Z';
    return reply(r, 429, 'The token budget of this ' + (mark.period === 'month' ? 'month' : 'day') +
                 ' is spent for this tenant; it renews at ' + renews + ' (in ' + wait + ' s).', 'insufficient_quota');
}

// A streamed response carries usage only when asked (stream_options.include_usage): the gateway asks, and drops
// that last event again (usage) when the client did not. The client's bytes go on unchanged where they can.
function bodyAskingUsage(r, body) {
    if (body.stream !== true) {
        return r.requestText;
    }
    var options = body.stream_options;
    if (options === undefined) {
        r.variables.sovkit_usage = 'strip';
        var text = r.requestText;
        var open = text.indexOf('{') + 1;  // a JSON object that names a model: a key follows
        return text.slice(0, open) + '"stream_options":{"include_usage":true},' + text.slice(open);
    }
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
        return r.requestText;  // the model server refuses it, in its own words
    }
    if (options.include_usage === true) {
        r.variables.sovkit_usage = 'pass';
        return r.requestText;
    }
    r.variables.sovkit_usage = 'strip';
    body.stream_options = Object.assign({}, options, {include_usage: true});
    return JSON.stringify(body);
}

function keepUsage(r, usage) {
    if (usage && typeof usage.prompt_tokens === 'number' && typeof usage.completion_tokens === 'number') {
        r.variables.sovkit_prompt_tokens = String(usage.prompt_tokens);
        r.variables.sovkit_completion_tokens = String(usage.completion_tokens);
    }
}

// js_body_filter of the model servers' responses (buffers): reads their usage, passes everything else unchanged.
function account(r, data, flags) {
    if (r.variables.sovkit_usage === '') {
        return whole(r, data, flags);
    }
    held = held === null ? data : Buffer.concat([held, data]);
    var end = held.lastIndexOf('\n\n');
    if (end >= 0 || flags.last) {
        var events = flags.last ? held : held.slice(0, end + 2);
        held = flags.last ? null : held.slice(end + 2);
        r.sendBuffer(withoutUnaskedUsage(r, events), flags);
    }
}

// Server-sent events: those that carry usage are read (the last, with no choices, holds the request's); that one
// stays in the stream only when the client asked for it.
function withoutUnaskedUsage(r, events) {
    var at = events.indexOf('"usage"');
    while (at >= 0) {
        var start = events.lastIndexOf('\n\n', at);
        start = start < 0 ? 0 : start + 2;
        var stop = events.indexOf('\n\n', at);
        stop = stop < 0 ? events.length : stop + 2;
        var event = parsedEvent(events.slice(start, stop));
        if (event !== null) {
            keepUsage(r, event.usage);
            if (r.variables.sovkit_usage === 'strip' && Array.isArray(event.choices) && event.choices.length === 0) {
                events = Buffer.concat([events.slice(0, start), events.slice(stop)]);
                stop = start;
            }
        }
        at = events.indexOf('"usage"', stop);
    }
    return events;
}

function parsedEvent(bytes) {
    try {
        return JSON.parse(bytes.toString().replace(/^data: /, ''));
    } catch (e) {
        return null;
    }
}

// A whole JSON response: its usage object is near its end; the bytes go on as they come.
function whole(r, data, flags) {
    tail = tail === null ? data : Buffer.concat([tail, data]);
    if (tail.length > TAIL_BYTES) {
        tail = tail.slice(tail.length - TAIL_BYTES);
    }
    if (flags.last) {
        var text = tail.toString();
        var at = text.lastIndexOf('"usage"');
        var usage = text.slice(at);
        var prompt = /^"usage"\s*:\s*\{[^}]*"prompt_tokens"\s*:\s*(\d+)/.exec(usage);
        var completion = /^"usage"\s*:\s*\{[^}]*"completion_tokens"\s*:\s*(\d+)/.exec(usage);
        if (at >= 0 && prompt && completion) {
            keepUsage(r, {prompt_tokens: Number(prompt[1]), completion_tokens: Number(completion[1])});
        }
    }
    r.sendBuffer(data, flags);
}

export default {route, account};
