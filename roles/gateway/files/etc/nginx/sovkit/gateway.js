// sovkit gateway: authenticates a tenant by the SHA-256 of its API key, lets it reach only its models, on the
// model servers' OpenAI routes only, and hands the request to that model's vLLM. Every error is OpenAI-shaped, as
// vLLM's own are: {"error": {"message", "type", "param", "code"}}. Tenants come from tenants.json (hashes, never
// keys): {"keys": {sha256-hex: tenant}, "models": {tenant: {model: true}}, "routes": {path: true},
// "upstreams": {model: upstream pool}} (maps, not lists: njs preloads objects frozen, without array methods).
var crypto = require('crypto');

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
    if (!listing && sovkit_tenants.routes[r.uri] !== true) {
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
    var model;
    try {
        model = JSON.parse(r.requestText || '').model;
    } catch (e) {
        return reply(r, 400, 'The body must be a JSON object with a model field.', 'invalid_request_error');
    }
    if (typeof model !== 'string') {
        return reply(r, 400, 'The body names no model.', 'invalid_request_error', 'model');
    }
    if (allowed[model] !== true || !(model in sovkit_tenants.upstreams)) {
        return noSuchModel(r, model);
    }
    r.variables.sovkit_model = model;
    r.variables.sovkit_upstream = sovkit_tenants.upstreams[model];
    r.internalRedirect('@vllm');
}

export default {route};
