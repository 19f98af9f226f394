"""Writes N declarations in each format to OUT: batch.json, dec-dms.xml (one document, one
Declaration element each) and cuscar.edi (one interchange, one consignment and container each).
Usage: generate.py N OUT"""
import datetime
import json
import sys

n, out = int(sys.argv[1]), sys.argv[2]
arrival = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
ALPHA = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def container(i):
    """An ISO 6346 code with its check digit."""
    owner, serial = "BLNU", f"{i:06d}"
    values = {c: v for c, v in zip(ALPHA, [*range(10), *[v for v in range(10, 39) if v % 11]])}
    total = sum(values[c] * 2**k for k, c in enumerate(owner + serial))
    return f"{owner}{serial}{total % 11 % 10}"


items = [("61091000", "Cotton T-shirts", 300, "CT", 4500.0), ("69072100", "Ceramic floor tiles", 20, "PX", 8000.0)]
docs = []
for i in range(n):
    docs.append({
        "contract": "baylens.declaration/1", "reference": f"BENCH-J-{i}",
        "declarant": {"name": "Bench Traders Ltd", "id": f"KE{i:010d}"}, "office": "KEMBA01",
        "container_code": container(i), "expected_arrival": arrival.isoformat(),
        "gross_mass_kg": 12500.0,
        "items": [{"hs_code": h, "description": d, "packages": p, "package_type": t, "gross_mass_kg": m}
                  for h, d, p, t, m in items],
    })
with open(f"{out}/batch.json", "w") as f:
    json.dump(docs, f)

when = arrival.strftime("%Y%m%d%H%M%SZ")
with open(f"{out}/dec-dms.xml", "w") as f:
    f.write('<?xml version="1.0"?>\n<md:MetaData xmlns:md="urn:wco:datamodel:WCO:DocumentMetaData-DMS:2" '
            'xmlns="urn:wco:datamodel:WCO:DEC-DMS:2">\n')
    for i in range(n):
        goods = "".join(
            f"<GovernmentAgencyGoodsItem><Commodity><Description>{d}</Description><Classification><ID>{h}</ID>"
            f"<IdentificationTypeCode>TSP</IdentificationTypeCode></Classification><GoodsMeasure>"
            f'<GrossMassMeasure unitCode="KGM">{m}</GrossMassMeasure></GoodsMeasure></Commodity>'
            f"<Packaging><QuantityQuantity>{p}</QuantityQuantity><TypeCode>{t}</TypeCode></Packaging>"
            f"</GovernmentAgencyGoodsItem>" for h, d, p, t, m in items)
        f.write(f"<Declaration><FunctionalReferenceID>BENCH-X-{i}</FunctionalReferenceID>"
                f'<TotalGrossMassMeasure unitCode="KGM">12500</TotalGrossMassMeasure>'
                f"<Declarant><Name>Bench Traders Ltd</Name><ID>KE{i:010d}</ID></Declarant>"
                f"<PresentationOffice><ID>KEMBA01</ID></PresentationOffice><GoodsShipment><Consignment>"
                f'<ArrivalDateTime><DateTimeString formatCode="304">{when}</DateTimeString></ArrivalDateTime>'
                f"<TransportEquipment><ID>{container(i)}</ID></TransportEquipment></Consignment>"
                f"{goods}</GoodsShipment></Declaration>\n")
    f.write("</md:MetaData>\n")

with open(f"{out}/cuscar.edi", "w") as f:
    seg = [f"UNH+1+CUSCAR:D:95B:UN", "BGM+85+BENCH+9", f"DTM+132:{arrival.strftime('%Y%m%d%H%M')}:203", "LOC+22+KEMBA01"]
    for i in range(n):
        seg += [f"CNI+{i + 1}+BL{i}", f"NAD+CN+KE{i:010d}::ZZZ++BENCH TRADERS LTD", f"EQD+CN+{container(i)}+22G1"]
        for k, (h, d, p, t, m) in enumerate(items):
            seg += [f"GID+{k + 1}+{p}:{t}", f"FTX+AAA+++{d.upper()}", f"MEA+AAE+G+KGM:{m:g}", f"CST++{h}:122"]
    seg.append(f"UNT+{len(seg) + 1}+1")
    f.write("UNA:+.? 'UNB+UNOC:3+BENCH+KRA+261206:0930+1'\n" + "'\n".join(seg) + "'\nUNZ+1+1'\n")
