from modelaudit.cli.main import console

# Worker processes re-run this file by path as __mp_main__: absolute import, guarded entry.
if __name__ == "__main__":
    console()
