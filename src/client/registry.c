/* The endpoint registry: see registry.h. */
#include "client/registry.h"
#include "net/tls.h"
#include "payload/json.h"

#include <stdlib.h>
#include <string.h>

#define SECRET_MAX 4096

static int check_secret(const char *secret, size_t len)
{
	if (!secret && len)
		return flaghook__error(FLAGHOOK_ESECRET, "endpoint secret is NULL with secret_len > 0");
	if (len > SECRET_MAX)
		return flaghook__error(FLAGHOOK_ESECRET, "endpoint secret is longer than %d bytes", SECRET_MAX);
	for (size_t i = 0; i < len; i++) {
		char c = secret[i];
		if (c == '\0' || c == '\r' || c == '\n')
			return flaghook__error(FLAGHOOK_ESECRET,
			                       "endpoint secret has a NUL, CR or LF at byte %zu", i);
	}
	size_t bad = flaghook__utf8_invalid_at(secret, len);
	if (bad != (size_t)-1)
		return flaghook__error(FLAGHOOK_ESECRET, "endpoint secret is not UTF-8 at byte %zu", bad);
	return 0;
}

static uint32_t default_events(int32_t scope, int32_t profile)
{
	if (profile == FLAGHOOK_PROFILE_BULLET_TRAIN)
		return FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_AUDIT_LOG_CREATED);
	if (scope == FLAGHOOK_SCOPE_ORGANISATION)
		return FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_AUDIT_LOG_CREATED) |
		       FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_FLAG_UPDATED) |
		       FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_FLAG_DELETED);
	return FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_FLAG_UPDATED) |
	       FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_FLAG_DELETED) |
	       FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED);
}

#define ALL_EVENTS (FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_FLAG_UPDATED) | \
                    FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_FLAG_DELETED) | \
                    FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_AUDIT_LOG_CREATED) | \
                    FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_NEW_VERSION_PUBLISHED))

static void endpoint_free(flaghook_client *c, fh_endpoint *ep)
{
	if (!ep)
		return;
	/* A URL may carry credentials (user:password@): wiped like a secret. */
	flaghook__free_secret(c->allocator, ep->url);
	if (ep->secret) {
		flaghook__wipe(ep->secret, ep->secret_len);
		flaghook__free(c->allocator, ep->secret);
	}
	flaghook__free(c->allocator, ep->ca_file);
	flaghook__free(c->allocator, ep->ca_path);
	flaghook__free(c->allocator, ep->client_cert);
	flaghook__free(c->allocator, ep->client_key);
	flaghook__free_secret(c->allocator, ep->client_key_password);
	pthread_mutex_destroy(&ep->dns_lock);
	for (size_t i = 0; i < ep->standard_secret_count; i++) {
		if (ep->standard_secrets[i]) {
			flaghook__wipe(ep->standard_secrets[i], strlen(ep->standard_secrets[i]));
			flaghook__free(c->allocator, ep->standard_secrets[i]);
		}
	}
	flaghook__free(c->allocator, ep->standard_secrets);
	flaghook__policy_free(&ep->policy, c->allocator);
	flaghook__free(c->allocator, ep);
}

void flaghook__endpoint_release(flaghook_client *c, fh_endpoint *ep)
{
	if (atomic_fetch_sub(&ep->refs, 1) == 1)
		endpoint_free(c, ep);
}

int flaghook__endpoint_build(flaghook_client *c, fh_endpoint **out, const flaghook_endpoint_options *o)
{
	int rc;
	if (o->scope != FLAGHOOK_SCOPE_ENVIRONMENT && o->scope != FLAGHOOK_SCOPE_ORGANISATION)
		return flaghook__error(FLAGHOOK_EINVAL, "endpoint scope %d is not a scope", (int)o->scope);
	if (o->profile < FLAGHOOK_PROFILE_FLAGSMITH || o->profile > FLAGHOOK_PROFILE_BULLET_TRAIN)
		return flaghook__error(FLAGHOOK_EINVAL, "endpoint profile %d is not a profile", (int)o->profile);
	if (o->render_flags & ~FLAGHOOK_RENDER_COMPACT)
		return flaghook__error(FLAGHOOK_EINVAL, "endpoint render_flags has unknown bits");
	uint32_t events = o->events ? o->events : default_events(o->scope, o->profile);
	if (events & ~(uint32_t)ALL_EVENTS)
		return flaghook__error(FLAGHOOK_EINVAL, "endpoint events has bits that are not event types");
	if (o->profile == FLAGHOOK_PROFILE_BULLET_TRAIN &&
	    events != FLAGHOOK_EVENT_BIT(FLAGHOOK_EVENT_AUDIT_LOG_CREATED))
		return flaghook__error(FLAGHOOK_EINVAL, "a Bullet Train endpoint takes AUDIT_LOG_CREATED only");
	fh_url parsed;
	bool is_name;
	rc = flaghook__url_parse(o->url, &parsed);
	if (!rc)
		rc = flaghook__guard_host(&c->guard, &parsed, &is_name);
	if (!rc)
		rc = check_secret(o->secret, o->secret_len);
	if (!rc)
		rc = flaghook__tls_check("endpoint", o->ca_file, o->ca_path, o->client_cert, o->client_key,
		                         o->client_key_password);
	if (rc)
		return rc;
	if (o->standard_secret_count && !o->standard_secrets)
		return flaghook__error(FLAGHOOK_ESECRET, "standard_secrets is NULL with a count");
	/* A rotation needs two or three; the header line must stay bounded. */
	if (o->standard_secret_count > FLAGHOOK_STANDARD_SECRETS_MAX)
		return flaghook__error(FLAGHOOK_ESECRET, "standard_secrets: at most %d", FLAGHOOK_STANDARD_SECRETS_MAX);
	for (size_t i = 0; i < o->standard_secret_count; i++) {
		char probe[64];
		if (!o->standard_secrets[i] ||
		    flaghook_standard_sign(probe, sizeof(probe), o->standard_secrets[i], "x", 0, "", 0))
			return flaghook__error(FLAGHOOK_ESECRET,
			                       "standard_secrets[%zu] is not whsec_ followed by base64", i);
	}

	if (o->max_in_flight < 0)
		return flaghook__error(FLAGHOOK_EINVAL, "endpoint max_in_flight must not be negative");
	fh_policy policy;
	rc = o->retry ? flaghook__policy_make(&policy, o->retry, c->allocator)
	              : flaghook__policy_copy(&policy, &c->policy, c->allocator);
	if (rc)
		return rc == FLAGHOOK_ENOMEM ? flaghook__error(rc, "out of memory") : rc;
	fh_endpoint *ep = flaghook__calloc(c->allocator, 1, sizeof(*ep));
	if (!ep) {
		flaghook__policy_free(&policy, c->allocator);
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	}
	ep->client = c;
	ep->policy = policy;
	ep->fifo = o->fifo != 0;
	ep->max_in_flight = ep->fifo ? 1 : o->max_in_flight ? o->max_in_flight : c->max_in_flight;
	ep->cooldown_ms = c->breaker_cooldown_ms;
	ep->scope = o->scope;
	ep->scope_id = o->scope_id;
	ep->events = events;
	ep->profile = o->profile;
	ep->render_flags = o->render_flags;
	atomic_init(&ep->enabled, !o->disabled);
	atomic_init(&ep->refs, 1);
	pthread_mutex_init(&ep->dns_lock, NULL);
	ep->parsed = parsed;
	ep->url = flaghook__strdup(c->allocator, o->url);
	bool oom = !ep->url;
	const char *files[] = { o->ca_file, o->ca_path, o->client_cert, o->client_key, o->client_key_password };
	char **copies[] = { &ep->ca_file, &ep->ca_path, &ep->client_cert, &ep->client_key, &ep->client_key_password };
	for (size_t i = 0; i < 5; i++)
		if (files[i])
			oom |= !(*copies[i] = flaghook__strdup(c->allocator, files[i]));
	if (o->secret_len) {
		ep->secret = flaghook__memdup(c->allocator, o->secret, o->secret_len);
		ep->secret_len = o->secret_len;
		oom |= !ep->secret;
	}
	if (o->standard_secret_count) {
		ep->standard_secrets = flaghook__calloc(c->allocator, o->standard_secret_count, sizeof(char *));
		oom |= !ep->standard_secrets;
		for (size_t i = 0; ep->standard_secrets && i < o->standard_secret_count; i++) {
			ep->standard_secrets[i] = flaghook__strdup(c->allocator, o->standard_secrets[i]);
			ep->standard_secret_count = i + 1;
			oom |= !ep->standard_secrets[i];
		}
	}
	if (oom) {
		endpoint_free(c, ep);
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	}
	*out = ep;
	return 0;
}

int flaghook__endpoint_register(flaghook_client *c, fh_endpoint *ep, uint64_t id, uint64_t *out_id)
{
	pthread_rwlock_wrlock(&c->lock);
	int rc = 0;
	if (c->endpoint_count == c->endpoint_cap) {
		size_t cap = c->endpoint_cap ? c->endpoint_cap * 2 : 8;
		fh_endpoint **grown = flaghook__reallocarray(c->allocator, c->endpoints, cap, sizeof(*grown));
		if (!grown) {
			rc = flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
			goto out;
		}
		c->endpoints = grown;
		c->endpoint_cap = cap;
	}
	if (id) {
		for (size_t i = 0; i < c->endpoint_count; i++) {
			if (c->endpoints[i]->id == id) {
				rc = flaghook__error(FLAGHOOK_EINVAL, "endpoint id %llu is already registered",
				                     (unsigned long long)id);
				goto out;
			}
		}
	} else if (c->next_endpoint_id == UINT64_MAX) {
		rc = flaghook__error(FLAGHOOK_EINVAL, "no endpoint id left above the highest in use: give one");
		goto out;
	} else {
		/* The next id above every one in use, caller-chosen ones included. */
		id = c->next_endpoint_id + 1;
	}
	if (id > c->next_endpoint_id)
		c->next_endpoint_id = id;
	ep->id = id;
	c->endpoints[c->endpoint_count++] = ep;
	if (out_id)
		*out_id = id;
out:
	pthread_rwlock_unlock(&c->lock);
	if (rc)
		endpoint_free(c, ep);
	return rc;
}

fh_endpoint *flaghook__endpoint_unregister(flaghook_client *c, uint64_t id)
{
	fh_endpoint *gone = NULL;
	pthread_rwlock_wrlock(&c->lock);
	for (size_t i = 0; i < c->endpoint_count; i++) {
		if (c->endpoints[i]->id == id) {
			gone = c->endpoints[i];
			memmove(&c->endpoints[i], &c->endpoints[i + 1],
			        (c->endpoint_count - i - 1) * sizeof(*c->endpoints));
			c->endpoint_count--;
			break;
		}
	}
	pthread_rwlock_unlock(&c->lock);
	return gone;
}

/* The registered endpoint with this id, with a reference taken; NULL if none. */
fh_endpoint *flaghook__endpoint_find(flaghook_client *c, uint64_t id)
{
	fh_endpoint *ep = NULL;
	pthread_rwlock_rdlock(&c->lock);
	for (size_t i = 0; i < c->endpoint_count; i++) {
		if (c->endpoints[i]->id == id) {
			ep = c->endpoints[i];
			atomic_fetch_add(&ep->refs, 1);
			break;
		}
	}
	pthread_rwlock_unlock(&c->lock);
	return ep;
}

static int by_id(const void *a, const void *b)
{
	uint64_t x = (*(fh_endpoint *const *)a)->id, y = (*(fh_endpoint *const *)b)->id;
	return x < y ? -1 : x > y;
}

int flaghook__endpoints_all(flaghook_client *c, fh_endpoint ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	pthread_rwlock_rdlock(&c->lock);
	size_t count = c->endpoint_count;
	fh_endpoint **all = count ? flaghook__calloc(c->allocator, count, sizeof(*all)) : NULL;
	if (count && !all) {
		pthread_rwlock_unlock(&c->lock);
		return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < count; i++) {
		all[i] = c->endpoints[i];
		atomic_fetch_add(&all[i]->refs, 1);
	}
	pthread_rwlock_unlock(&c->lock);
	if (count)
		qsort(all, count, sizeof(*all), by_id);
	*out = all;
	*n = count;
	return 0;
}

static bool matches(const fh_endpoint *ep, int type, int64_t env_id, int64_t org_id)
{
	if (!atomic_load(&ep->enabled) || !(ep->events & FLAGHOOK_EVENT_BIT(type)))
		return false;
	if (ep->scope == FLAGHOOK_SCOPE_ENVIRONMENT)
		return env_id && ep->scope_id == env_id;
	return org_id && ep->scope_id == org_id;
}

int flaghook__route(flaghook_client *c, int type, int64_t env_id, int64_t org_id,
                    fh_endpoint ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	pthread_rwlock_rdlock(&c->lock);
	size_t count = 0;
	for (size_t i = 0; i < c->endpoint_count; i++)
		count += matches(c->endpoints[i], type, env_id, org_id);
	fh_endpoint **list = NULL;
	if (count) {
		list = flaghook__calloc(c->allocator, count, sizeof(*list));
		if (!list) {
			pthread_rwlock_unlock(&c->lock);
			return flaghook__error(FLAGHOOK_ENOMEM, "out of memory");
		}
		/* `enabled` may change between the count and this pass (it is not
		 * guarded by the registry lock): bounded by the count, and what is
		 * taken is what is returned. */
		size_t k = 0;
		for (size_t i = 0; i < c->endpoint_count && k < count; i++) {
			if (matches(c->endpoints[i], type, env_id, org_id)) {
				atomic_fetch_add(&c->endpoints[i]->refs, 1);
				list[k++] = c->endpoints[i];
			}
		}
		count = k;
	}
	pthread_rwlock_unlock(&c->lock);
	*out = list;
	*n = count;
	if (!count)
		flaghook__free(c->allocator, list), *out = NULL;
	return 0;
}

void flaghook__endpoints_free(flaghook_client *c)
{
	for (size_t i = 0; i < c->endpoint_count; i++)
		flaghook__endpoint_release(c, c->endpoints[i]);
	flaghook__free(c->allocator, c->endpoints);
	c->endpoints = NULL;
	c->endpoint_count = c->endpoint_cap = 0;
}

