// sovkit gateway: authenticates a tenant by the SHA-256 of its API key, lets it reach only its models,
// and hands the request to that model's vLLM. Tenants come from tenants.json (hashes, never keys):
// {"keys": {sha256-hex: tenant}, "models": {tenant: {model: true}}, "upstreams": {model: upstream pool}}
// (maps, not lists: njs preloads objects frozen, without array methods).
var crypto = require('crypto');

function reply(r, status, message, type) {
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify({error: {message: message, type: type, code: status}}));
}

function tenantOf(r) {
    var auth = r.headersIn.Authorization || '';
    if (auth.slice(0, 7) !== 'Bearer ') {
        return null;
    }
    var digest = crypto.createHash('sha256').update(auth.slice(7)).digest('hex');
    return sovkit_tenants.keys[digest] || null;
}

function route(r) {
    var tenant = tenantOf(r);
    if (tenant === null) {
        return reply(r, 401, 'a valid API key is required (Authorization: Bearer <key>)', 'authentication_error');
    }
    r.variables.sovkit_tenant = tenant;
    var allowed = sovkit_tenants.models[tenant];
    if (r.uri === '/v1/models') {
        var data = Object.keys(allowed).sort().map(function (name) {
            return {id: name, object: 'model', owned_by: 'sovkit'};
        });
        r.headersOut['Content-Type'] = 'application/json';
        return r.return(200, JSON.stringify({object: 'list', data: data}));
    }
    if (r.method !== 'POST') {
        return reply(r, 405, 'use POST', 'invalid_request_error');
    }
    var model;
    try {
        model = JSON.parse(r.requestText || '').model;
    } catch (e) {
        return reply(r, 400, 'the body must be a JSON object with a model field', 'invalid_request_error');
    }
    if (typeof model !== 'string' || !(model in sovkit_tenants.upstreams)) {
        return reply(r, 404, 'no such model', 'invalid_request_error');
    }
    r.variables.sovkit_model = model;
    if (allowed[model] !== true) {
        return reply(r, 403, 'this tenant may not use model ' + model, 'permission_error');
    }
    r.variables.sovkit_upstream = sovkit_tenants.upstreams[model];
    r.internalRedirect('@vllm');
}

export default {route};
