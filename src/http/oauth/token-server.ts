/**
 * The token endpoint's grant handling: `@node-oauth/oauth2-server` (client authentication
 * in the body or as Basic, the authorization_code and refresh_token grants, PKCE, RFC 6749
 * §5 answers) over OAuthService's model.
 *
 * Why the library: it is kept up (5.x, 2025), framework-agnostic (plain request/response
 * objects, so it sits behind Koa without an adapter), and its model interface maps one to
 * one onto our store's operations (get/use a code, get/rotate a refresh token, save
 * tokens). Its authorization endpoint is not used: the consent page needs our login,
 * session and CSRF, and its error redirects drop a redirect_uri's own query string.
 *
 * Two changes to its rules, in subclasses of its grants:
 * - a token request whose redirect_uri differs from the authorization request's is
 *   `invalid_grant` (RFC 6749 §5.2), not `invalid_request`;
 * - a refresh asking for a wider scope is refused before the refresh token is spent (the
 *   library rotated it first, so a client's mistake cost it the whole grant).
 */
import OAuth2Server from '@node-oauth/oauth2-server';
import AuthorizationCodeGrantType from '@node-oauth/oauth2-server/lib/grant-types/authorization-code-grant-type.js';
import RefreshTokenGrantType from '@node-oauth/oauth2-server/lib/grant-types/refresh-token-grant-type.js';
import type { OAuthOptions, TokenEndpointModel } from '../../services/oauth.js';

class CodeGrant extends AuthorizationCodeGrantType {
  override validateRedirectUri(request: OAuth2Server.Request, code: OAuth2Server.AuthorizationCode): void {
    const given = (request.body as Record<string, unknown>).redirect_uri;
    if (given !== code.redirectUri) {
      throw new OAuth2Server.InvalidGrantError('Invalid grant: `redirect_uri` differs from the one of the authorization request');
    }
  }
}

class RefreshGrant extends RefreshTokenGrantType {
  override async handle(request: OAuth2Server.Request, client: OAuth2Server.Client): Promise<OAuth2Server.Token> {
    const token = await this.getRefreshToken(request, client);
    const scope = this.getScope(request, token);
    await this.revokeToken(token);
    return this.saveToken(token.user, client, scope);
  }
}

export function tokenServer(model: TokenEndpointModel, options: OAuthOptions): OAuth2Server {
  return new OAuth2Server({
    model: model as OAuth2Server.RefreshTokenModel,
    accessTokenLifetime: options.accessTokenTtlSeconds,
    refreshTokenLifetime: options.refreshTokenTtlSeconds,
    // `username` in the answer (see OAuthService.model.saveToken).
    allowExtendedTokenAttributes: true,
    alwaysIssueNewRefreshToken: true,
    extendedGrantTypes: {
      authorization_code: CodeGrant as unknown as typeof OAuth2Server.AbstractGrantType,
      refresh_token: RefreshGrant as unknown as typeof OAuth2Server.AbstractGrantType,
    },
  });
}
