"""Login drivers: pexpect sessions through real ssh and su, graded into outcomes."""

from pamconform.drivers.login import LoginOutcome, LoginResult, Spawner, ssh_login, su_login

__all__ = ["LoginOutcome", "LoginResult", "Spawner", "ssh_login", "su_login"]
