package audit

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// Action is the key an event is stored under, such as "user.login". It is the
// raw value in the action column of audit_log and the key admins filter on,
// so it is checked against the catalogue before anything is written.
type Action string

// The catalogue: one constant per key of the TREK wiki page "Audit Log", in
// the page's order and grouped under its headings.
const (
	// Authentication
	UserRegister       Action = "user.register"
	UserLogin          Action = "user.login"
	UserLoginFailed    Action = "user.login_failed"
	UserPasswordChange Action = "user.password_change"
	UserAccountDelete  Action = "user.account_delete"

	// MFA
	UserMFAEnable  Action = "user.mfa_enable"
	UserMFADisable Action = "user.mfa_disable"

	// Trips
	TripCreate Action = "trip.create"
	TripUpdate Action = "trip.update"
	TripCopy   Action = "trip.copy"
	TripDelete Action = "trip.delete"

	// Admin actions
	AdminUserCreate                Action = "admin.user_create"
	AdminUserUpdate                Action = "admin.user_update"
	AdminUserDelete                Action = "admin.user_delete"
	AdminInviteCreate              Action = "admin.invite_create"
	AdminInviteDelete              Action = "admin.invite_delete"
	AdminPermissionsUpdate         Action = "admin.permissions_update"
	AdminOIDCUpdate                Action = "admin.oidc_update"
	AdminAddonUpdate               Action = "admin.addon_update"
	AdminOAuthSessionRevoke        Action = "admin.oauth_session.revoke"
	AdminRotateJWTSecret           Action = "admin.rotate_jwt_secret"
	AdminBagTracking               Action = "admin.bag_tracking"
	AdminPlacesPhotos              Action = "admin.places_photos"
	AdminPlacesAutocomplete        Action = "admin.places_autocomplete"
	AdminPlacesDetails             Action = "admin.places_details"
	AdminCollabFeatures            Action = "admin.collab_features"
	AdminPackingTemplateDelete     Action = "admin.packing_template_delete"
	AdminDefaultUserSettingsUpdate Action = "admin.default_user_settings_update"
	AdminDemoBaselineSave          Action = "admin.demo_baseline_save"
	SettingsAppUpdate              Action = "settings.app_update"

	// Backups
	BackupCreate        Action = "backup.create"
	BackupRestore       Action = "backup.restore"
	BackupUploadRestore Action = "backup.upload_restore"
	BackupDelete        Action = "backup.delete"
	BackupAutoSettings  Action = "backup.auto_settings"

	// MCP
	MCPToolCall Action = "mcp.tool_call"

	// OAuth
	OAuthClientCreate          Action = "oauth.client.create"
	OAuthClientRotateSecret    Action = "oauth.client.rotate_secret"
	OAuthClientDelete          Action = "oauth.client.delete"
	OAuthConsentGrant          Action = "oauth.consent.grant"
	OAuthTokenIssue            Action = "oauth.token.issue"
	OAuthTokenRefresh          Action = "oauth.token.refresh"
	OAuthTokenRevoke           Action = "oauth.token.revoke"
	OAuthTokenGrantFailed      Action = "oauth.token.grant_failed"
	OAuthTokenClientAuthFailed Action = "oauth.token.client_auth_failed"

	// Integrations
	ImmichPrivateIPConfigured Action = "immich.private_ip_configured"
)

// ActionInfo describes one catalogue key: where it sits on the wiki page, what
// it means, how the log line names it and what an event under it must carry.
type ActionInfo struct {
	Action      Action
	Category    string // the wiki page's heading, e.g. "Authentication"
	Description string // the wiki page's description, word for word
	// Label is the short phrase of the trek.log line, e.g. "created trip".
	// Empty: the action key itself.
	Label string
	// RequiredDetails are the detail keys an event must carry; Record
	// rejects an event that lacks one (ErrMissingDetail).
	RequiredDetails []string
	// ContextDetails are detail keys TREK's handlers send for context. They
	// are never required, and they do not count as a change for
	// ChangeRequired.
	ContextDetails []string
	// ChangeRequired demands at least one detail key beyond RequiredDetails
	// and ContextDetails: trip.update spreads the changed fields as
	// top-level keys, and an update that changed nothing is a bug.
	ChangeRequired bool
	// ResourceRequired demands a non-empty Event.Resource (mcp.tool_call
	// stores the tool name there).
	ResourceRequired bool
}

// Errors from validating an event. Each error Record returns for a bad event
// wraps one of these and names the action and what is wrong.
var (
	// ErrUnknownAction: the key is neither in the catalogue nor registered
	// through Config.ExtraActions. Nothing is written.
	ErrUnknownAction = errors.New("audit: unknown action")
	// ErrMissingDetail: a detail, the resource or a change the catalogue
	// requires for this action is absent. Nothing is written.
	ErrMissingDetail = errors.New("audit: missing required detail")
	// ErrBadAction: an action registered through Config.ExtraActions is not
	// usable (empty, malformed, duplicated or without a category).
	ErrBadAction = errors.New("audit: invalid action registration")
)

// catalogue is the wiki page, in its order. Tests compare it with the page
// itself (testdata/Audit-Log.txt) so the two cannot drift apart.
var catalogue = []ActionInfo{
	{Action: UserRegister, Category: "Authentication", Description: "User registered", Label: "registered"},
	{Action: UserLogin, Category: "Authentication", Description: "User logged in", Label: "logged in"},
	{Action: UserLoginFailed, Category: "Authentication", Description: "Login attempt failed", Label: "failed to log in"},
	{Action: UserPasswordChange, Category: "Authentication", Description: "User changed their password", Label: "changed password"},
	{Action: UserAccountDelete, Category: "Authentication", Description: "User deleted their account", Label: "deleted account"},

	{Action: UserMFAEnable, Category: "MFA", Description: "MFA enabled on an account", Label: "enabled MFA"},
	{Action: UserMFADisable, Category: "MFA", Description: "MFA disabled on an account", Label: "disabled MFA"},

	{Action: TripCreate, Category: "Trips", Description: "Trip created (includes title)", Label: "created trip",
		RequiredDetails: []string{"title"}, ContextDetails: []string{"tripId", "reminder_days"}},
	{Action: TripUpdate, Category: "Trips", Description: "Trip updated (includes changed fields)", Label: "updated trip",
		RequiredDetails: []string{"tripId"}, ContextDetails: []string{"trip", "owner"}, ChangeRequired: true},
	{Action: TripCopy, Category: "Trips", Description: "Trip duplicated (includes source and new trip IDs)", Label: "copied trip",
		RequiredDetails: []string{"sourceTripId", "newTripId"}, ContextDetails: []string{"title"}},
	{Action: TripDelete, Category: "Trips", Description: "Trip deleted (includes trip ID and title)", Label: "deleted trip",
		RequiredDetails: []string{"tripId", "trip"}, ContextDetails: []string{"owner"}},

	{Action: AdminUserCreate, Category: "Admin actions", Description: "User created by admin", Label: "created user"},
	{Action: AdminUserUpdate, Category: "Admin actions", Description: "User edited by admin (role, email, username, etc.)", Label: "edited user"},
	{Action: AdminUserDelete, Category: "Admin actions", Description: "User deleted by admin", Label: "deleted user"},
	{Action: AdminInviteCreate, Category: "Admin actions", Description: "Invite link created", Label: "created invite link"},
	{Action: AdminInviteDelete, Category: "Admin actions", Description: "Invite link deleted", Label: "deleted invite link"},
	{Action: AdminPermissionsUpdate, Category: "Admin actions", Description: "Instance permissions updated", Label: "updated permissions"},
	{Action: AdminOIDCUpdate, Category: "Admin actions", Description: "OIDC/SSO settings updated", Label: "updated OIDC settings"},
	{Action: AdminAddonUpdate, Category: "Admin actions", Description: "Addon enabled, disabled, or configured", Label: "updated addon"},
	{Action: AdminOAuthSessionRevoke, Category: "Admin actions", Description: "OAuth session revoked by admin", Label: "revoked OAuth session"},
	{Action: AdminRotateJWTSecret, Category: "Admin actions", Description: "JWT secret rotated", Label: "rotated JWT secret"},
	{Action: AdminBagTracking, Category: "Admin actions", Description: "Bag tracking feature toggled", Label: "toggled bag tracking"},
	{Action: AdminPlacesPhotos, Category: "Admin actions", Description: "Places photos feature toggled", Label: "toggled places photos"},
	{Action: AdminPlacesAutocomplete, Category: "Admin actions", Description: "Places autocomplete feature toggled", Label: "toggled places autocomplete"},
	{Action: AdminPlacesDetails, Category: "Admin actions", Description: "Places details feature toggled", Label: "toggled places details"},
	{Action: AdminCollabFeatures, Category: "Admin actions", Description: "Collaboration features updated", Label: "updated collaboration features"},
	{Action: AdminPackingTemplateDelete, Category: "Admin actions", Description: "Packing template deleted", Label: "deleted packing template"},
	{Action: AdminDefaultUserSettingsUpdate, Category: "Admin actions", Description: "Default user settings updated", Label: "updated default user settings"},
	{Action: AdminDemoBaselineSave, Category: "Admin actions", Description: "Demo baseline snapshot saved", Label: "saved demo baseline"},
	{Action: SettingsAppUpdate, Category: "Admin actions", Description: "App settings updated (SMTP, webhooks, MFA policy, etc.)", Label: "updated app settings"},

	{Action: BackupCreate, Category: "Backups", Description: "Manual backup created", Label: "created backup"},
	{Action: BackupRestore, Category: "Backups", Description: "Restore from stored backup", Label: "restored backup"},
	{Action: BackupUploadRestore, Category: "Backups", Description: "Restore from uploaded ZIP", Label: "restored uploaded backup"},
	{Action: BackupDelete, Category: "Backups", Description: "Backup deleted", Label: "deleted backup"},
	{Action: BackupAutoSettings, Category: "Backups", Description: "Auto-backup schedule saved", Label: "saved auto-backup schedule"},

	{Action: MCPToolCall, Category: "MCP", Description: "MCP tool invoked (resource = tool name)", Label: "called MCP tool", ResourceRequired: true},

	{Action: OAuthClientCreate, Category: "OAuth", Description: "OAuth client application created", Label: "created OAuth client"},
	{Action: OAuthClientRotateSecret, Category: "OAuth", Description: "OAuth client secret rotated", Label: "rotated OAuth client secret"},
	{Action: OAuthClientDelete, Category: "OAuth", Description: "OAuth client application deleted", Label: "deleted OAuth client"},
	{Action: OAuthConsentGrant, Category: "OAuth", Description: "User granted OAuth consent", Label: "granted OAuth consent"},
	{Action: OAuthTokenIssue, Category: "OAuth", Description: "OAuth access token issued", Label: "issued OAuth token"},
	{Action: OAuthTokenRefresh, Category: "OAuth", Description: "OAuth access token refreshed", Label: "refreshed OAuth token"},
	{Action: OAuthTokenRevoke, Category: "OAuth", Description: "OAuth token revoked", Label: "revoked OAuth token"},
	{Action: OAuthTokenGrantFailed, Category: "OAuth", Description: "OAuth token grant attempt failed", Label: "failed OAuth token grant"},
	{Action: OAuthTokenClientAuthFailed, Category: "OAuth", Description: "OAuth client authentication failed", Label: "failed OAuth client authentication"},

	{Action: ImmichPrivateIPConfigured, Category: "Integrations", Description: "Immich URL saved that resolves to a private IP", Label: "saved private-IP Immich URL"},
}

// Catalogue returns every built-in key in the wiki page's order. The slice is
// a copy: changing it changes nothing in the library.
func Catalogue() []ActionInfo {
	out := make([]ActionInfo, len(catalogue))
	for i, info := range catalogue {
		out[i] = info.clone()
	}
	return out
}

func (info ActionInfo) clone() ActionInfo {
	info.RequiredDetails = slices.Clone(info.RequiredDetails)
	info.ContextDetails = slices.Clone(info.ContextDetails)
	return info
}

// label is the phrase the log line uses for the action.
func (info *ActionInfo) label() string {
	if info.Label != "" {
		return info.Label
	}
	return string(info.Action)
}

// actionSet is the closed set of keys one Auditor accepts: the catalogue plus
// what the host registered. It is built once at Open and only read after.
type actionSet map[Action]*ActionInfo

var builtinActions = func() actionSet {
	set := make(actionSet, len(catalogue))
	for i := range catalogue {
		set[catalogue[i].Action] = &catalogue[i]
	}
	return set
}()

// newActionSet adds the host's extra keys to the catalogue. An extra key may
// not redefine a built-in one: the meaning of a stored key must not depend on
// which server wrote it.
func newActionSet(extra []ActionInfo) (actionSet, error) {
	if len(extra) == 0 {
		return builtinActions, nil
	}
	set := make(actionSet, len(builtinActions)+len(extra))
	for k, v := range builtinActions {
		set[k] = v
	}
	for _, info := range extra {
		if err := validActionKey(info.Action); err != nil {
			return nil, err
		}
		if strings.TrimSpace(info.Category) == "" {
			return nil, fmt.Errorf("%w: %s has no category", ErrBadAction, quoted(string(info.Action)))
		}
		if err := validLabel(info.Label); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadAction, quoted(string(info.Action)), err)
		}
		if _, dup := set[info.Action]; dup {
			return nil, fmt.Errorf("%w: %s is already in the catalogue", ErrBadAction, quoted(string(info.Action)))
		}
		c := info.clone()
		set[info.Action] = &c
	}
	return set, nil
}

// validActionKey accepts the shape every catalogue key has: lower-case
// letters, digits, '_' and '.', starting with a letter, at most 64 bytes.
// Keeping keys to this shape keeps them safe in log lines and URLs.
func validActionKey(a Action) error {
	if a == "" || len(a) > 64 {
		return fmt.Errorf("%w: key %s must be 1 to 64 bytes", ErrBadAction, quoted(string(a)))
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		ok := c >= 'a' && c <= 'z' || i > 0 && (c == '_' || c == '.' || c >= '0' && c <= '9')
		if !ok {
			return fmt.Errorf("%w: key %s may hold only a-z, 0-9, '_' and '.', starting with a letter", ErrBadAction, quoted(string(a)))
		}
	}
	return nil
}

// validLabel keeps a label to visible text (visibleRune), since it stands
// in every log line of its events unescaped.
func validLabel(l string) error {
	if len(l) > 64 {
		return errors.New("label longer than 64 bytes")
	}
	for _, r := range l {
		if r == utf8.RuneError || r == '"' || r == '=' || !visibleRune(r) {
			return fmt.Errorf("label %s may hold only visible characters, without '\"' and '='", quoted(l))
		}
	}
	return nil
}

// check verifies that e carries what its action requires.
func (info *ActionInfo) check(e *Event) error {
	if info.ResourceRequired && strings.TrimSpace(e.Resource) == "" {
		return fmt.Errorf("%w: %s needs a resource", ErrMissingDetail, info.Action)
	}
	var missing []string
	var cause error // why the first missing detail that could not be encoded could not
	for _, k := range info.RequiredDetails {
		v, ok := e.Details[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		if none, err := absent(v); none {
			missing = append(missing, k)
			if err != nil && cause == nil {
				cause = fmt.Errorf("detail %s cannot be encoded as JSON: %w", quoted(k), err)
			}
		}
	}
	if len(missing) > 0 && cause != nil {
		return fmt.Errorf("%w: %s needs details %s; %w", ErrMissingDetail, info.Action, quoteList(missing), cause)
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s needs details %s", ErrMissingDetail, info.Action, quoteList(missing))
	}
	if info.ChangeRequired {
		changed := false
		for k := range e.Details {
			if !slices.Contains(info.RequiredDetails, k) && !slices.Contains(info.ContextDetails, k) {
				changed = true
				break
			}
		}
		if !changed {
			return fmt.Errorf("%w: %s needs at least one changed field beside %s", ErrMissingDetail, info.Action,
				quoteList(append(slices.Clone(info.RequiredDetails), info.ContextDetails...)))
		}
	}
	return nil
}

// absent reports whether a required detail's value says nothing: nil, a
// nil pointer, map or slice, JSON null, or text that is empty or blank
// (as a resource must not be), at the end of however many pointers.
//
// A value that encodes itself (a json.RawMessage, a json.Marshaler, an
// encoding.TextMarshaler) and a []byte are judged by what they encode to,
// which is what would be stored: nothing, null or a blank JSON string says
// nothing, however it was spelled (json.RawMessage(`" "`), a Marshaler
// giving null, a TextMarshaler giving ""). Nor does an encoding that fails
// or panics: the value is absent and err says why, so that the event is
// refused as missing the detail rather than stored without it.
//
// A pointer that leads back to one already followed (v := new(any); *v = v)
// would be followed until the stack ran out, a crash no recover catches:
// such a value is not absent, and encoding it refuses the event.
func absent(v any) (bool, error) {
	var seen map[uintptr]bool // the pointers followed, past the first few
	for depth := 0; ; depth++ {
		switch v := v.(type) {
		case nil:
			return true, nil
		case string:
			return strings.TrimSpace(v) == "", nil
		case json.Marshaler, encoding.TextMarshaler:
			// Also a nil pointer that is one: encoding/json writes null
			// for it without calling it, as marshalText does here.
			return encodesToNothing(marshalText(v))
		}
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Pointer, reflect.Interface:
			if rv.IsNil() {
				return true, nil
			}
			if depth >= 8 && rv.Kind() == reflect.Pointer {
				if seen == nil {
					seen = map[uintptr]bool{}
				}
				if seen[rv.Pointer()] {
					return false, nil
				}
				seen[rv.Pointer()] = true
			}
			v = rv.Elem().Interface()
			continue
		case reflect.Slice:
			if rv.IsNil() {
				return true, nil
			}
			if rv.Type().Elem().Kind() == reflect.Uint8 { // base64 text: []byte{} is ""
				return encodesToNothing(marshalText(v))
			}
			return false, nil
		case reflect.Map:
			return rv.IsNil(), nil
		case reflect.String: // a string type of the host's own (type TripTitle string)
			return strings.TrimSpace(rv.String()) == "", nil
		}
		return false, nil
	}
}

// encodesToNothing is absent's reading of a value's JSON encoding enc, or
// of the error that stopped it: nothing, null, a string that is blank once
// its escapes are read, and a failure say nothing.
func encodesToNothing(enc []byte, err error) (bool, error) {
	if err != nil {
		return true, err
	}
	enc = bytes.TrimSpace(enc)
	switch {
	case len(enc) == 0, string(enc) == "null":
		return true, nil
	case enc[0] == '"':
		var s string
		if json.Unmarshal(enc, &s) == nil {
			return strings.TrimSpace(s) == "", nil
		}
	}
	return false, nil
}

func quoteList(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = quoted(k)
	}
	return strings.Join(q, ", ")
}
