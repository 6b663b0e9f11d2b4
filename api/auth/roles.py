"""Which built-in roles each API user holds (``api_user_role``), and the rules that keep someone
in charge: the first user is an administrator, the users of a database made before roles
existed become administrators when it is opened, and the last administrator cannot lose the
role. What each role may do is ``permissions``' business; this module only stores names.

A user with no role at all may authenticate but do nothing: that is what a user added by
``Users.add`` alone (not through ``add_user`` or the CLI) gets once anyone holds a role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import Connection, bindparam, delete, func, insert, literal, select
from sqlmodel import Field, SQLModel

from engine.db.compiled import CompiledStatement, RawTransaction
from engine.db.store import Store
from engine.errors import FieldError, RequestInvalid

from .user_events import user_event
from .users import User, UserNotFound, UserRecord, Users

ADMIN, OPERATOR, VIEWER, AUDITOR = "ADMIN", "OPERATOR", "VIEWER", "AUDITOR"
ROLES = (ADMIN, OPERATOR, VIEWER, AUDITOR)
DEFAULT_ROLE = VIEWER  # a user added without --role, once there is an administrator


class UserRoleRecord(SQLModel, table=True):
    __tablename__ = "api_user_role"

    # Removing a user removes their roles with them (the database does it: no code can forget).
    user_id: int = Field(foreign_key="api_user.id", primary_key=True, ondelete="CASCADE")
    role: str = Field(primary_key=True, max_length=32)


_ROLE = UserRoleRecord.__table__  # type: ignore[attr-defined]
_USERS = UserRecord.__table__  # type: ignore[attr-defined]
# Read on every API request: compiled once, run on a pooled connection as ``Users.verified``.
_ROLES_OF = CompiledStatement(
    select(_ROLE.c.role).where(_ROLE.c.user_id == bindparam("user_id")).order_by(_ROLE.c.role)
)


class LastAdministrator(RequestInvalid):
    """Taking ADMIN from (or removing) the only administrator would leave no one to manage
    users: refused, naming the user."""

    def __init__(self, name: str, what: str) -> None:
        message = f"{name} is the last ADMIN: grant ADMIN to another user before {what}"
        super().__init__([FieldError("role", message, name)])


def checked_roles(roles: Iterable[str]) -> list[str]:
    """The roles named, upper-cased and each once; an unknown name is refused."""
    wanted = list(dict.fromkeys(r.strip().upper() for r in roles))
    unknown = [r for r in wanted if r not in ROLES]
    if unknown:
        known = ", ".join(ROLES)
        raise RequestInvalid(
            [FieldError("role", f"no such role (the roles are {known})", r) for r in unknown]
        )
    return wanted


class Roles:
    """Read, grant and revoke roles (``app.state.roles`` in the API)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_schema()
        self._adopt_existing_users()

    def _adopt_existing_users(self) -> None:
        """A database whose users were made before roles existed: each becomes an ADMIN, as
        every user could do anything then. Only while no one holds any role, in one statement,
        so that several processes opening it at once agree."""
        with self.store.engine.connect() as conn:
            anyone = conn.execute(select(_ROLE.c.user_id).limit(1)).first()
            if anyone is not None or conn.execute(select(_USERS.c.id).limit(1)).first() is None:
                return
        nobody = ~select(_ROLE.c.user_id).exists()
        adopt = insert(_ROLE).from_select(
            ["user_id", "role"], select(_USERS.c.id, literal(ADMIN)).where(nobody)
        )
        with self.store.begin_write() as conn:
            conn.execute(adopt)

    def of(self, user_id: int) -> frozenset[str]:
        """The user's roles: one indexed read, fast enough for the event loop."""
        conn = self.store.engine.raw_connection()
        try:
            result = _ROLES_OF.run(RawTransaction(conn, self.store.engine.dialect), {
                "user_id": user_id
            })  # fmt: skip
        finally:
            conn.close()
        return frozenset(row["role"] for row in result)

    def by_user(self) -> dict[int, list[str]]:
        """Every user's roles by user id (users with none are absent)."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(_ROLE.c.user_id, _ROLE.c.role).order_by(_ROLE.c.role))
            found: dict[int, list[str]] = {}
            for user_id, role in rows:
                found.setdefault(user_id, []).append(role)
        return found

    def grant(self, user: User, roles: Iterable[str]) -> list[str]:
        """Give the user these roles (those held already stay); their roles after."""
        return self._change(user, roles, "grantedRoles", self._grant)

    def revoke(self, user: User, roles: Iterable[str]) -> list[str]:
        """Take these roles from the user; the last ADMIN keeps theirs. Their roles after."""
        return self._change(user, roles, "revokedRoles", self._revoke)

    def _change(
        self,
        user: User,
        roles: Iterable[str],
        shown_as: str,
        apply: Callable[[User, list[str]], list[str]],
    ) -> list[str]:
        """A grant or revoke, as its audit event (UPDATE_USER, the roles named)."""
        named = list(roles)
        info = {"username": user.name, shown_as: named}
        with user_event(self.store, "UPDATE_USER", user.name, info) as done:
            done.resource_id = user.id
            return apply(user, checked_roles(named))

    def _grant(self, user: User, wanted: list[str]) -> list[str]:
        with self.store.begin_write() as conn:
            held = self._held(conn, user.id)
            for role in wanted:
                if role not in held:
                    conn.execute(insert(_ROLE).values(user_id=user.id, role=role))
            return sorted(held | set(wanted))

    def _revoke(self, user: User, unwanted: list[str]) -> list[str]:
        with self.store.begin_write() as conn:
            held = self._held(conn, user.id)
            if ADMIN in unwanted and ADMIN in held and self._admins(conn) <= 1:
                raise LastAdministrator(user.name, "revoking theirs")
            gone = delete(_ROLE).where(_ROLE.c.user_id == user.id, _ROLE.c.role.in_(unwanted))
            conn.execute(gone)
            return sorted(held - set(unwanted))

    def check_removable(self, user: User) -> None:
        """Refuse removing the last ADMIN while other users remain (they could not manage
        anyone then); the very last user may go."""
        with self.store.engine.connect() as conn:
            others = conn.execute(
                select(func.count()).select_from(_USERS).where(_USERS.c.id != user.id)
            ).scalar_one()
            if others and ADMIN in self._held(conn, user.id) and self._admins(conn) <= 1:
                raise LastAdministrator(user.name, "removing them")

    def add_user(self, users: Users, name: str, password: str, roles: Iterable[str] = ()) -> User:
        """Add a user (or set an existing one's password) with ``roles`` granted. A new user
        given none gets ADMIN when no one holds it (the first user), else ``DEFAULT_ROLE``."""
        roles = list(roles)
        try:
            existed = users.get(name) is not None
        except UserNotFound:
            existed = False
        event = "CHANGE_USER_PASSWORD" if existed else "CREATE_USER"
        with user_event(self.store, event, name, {"username": name, "roles": roles}) as done:
            wanted = checked_roles(roles)  # refused before anything is written
            user = users.add(name, password)
            done.resource_id = user.id
            if not wanted and not existed:
                with self.store.engine.connect() as conn:
                    wanted = [DEFAULT_ROLE if self._admins(conn) else ADMIN]
            if wanted:
                self.grant(user, wanted)
            return user

    @staticmethod
    def _held(conn: Connection, user_id: int) -> set[str]:
        rows = conn.execute(select(_ROLE.c.role).where(_ROLE.c.user_id == user_id))
        return {r for (r,) in rows}

    @staticmethod
    def _admins(conn: Connection) -> int:
        count = select(func.count()).select_from(_ROLE).where(_ROLE.c.role == ADMIN)
        return int(conn.execute(count).scalar_one())
