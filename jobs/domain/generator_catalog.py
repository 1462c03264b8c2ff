"""The shop's vocabulary and shape: segments, categories, places and rhythms for the generator."""

from __future__ import annotations

SEGMENTS = ("Premium", "Regular", "Occasional", "New")
SEGMENT_SHARES = (0.10, 0.40, 0.35, 0.15)
# relative order frequency: premium customers come back far more often
SEGMENT_ACTIVITY = (5.0, 2.0, 0.7, 1.0)
SEGMENT_LTV_MEDIAN = (5000.0, 1500.0, 400.0, 100.0)

CATEGORIES = (
    "Electronics",
    "Clothing",
    "Home & Kitchen",
    "Books",
    "Sports & Outdoors",
    "Beauty",
    "Toys & Games",
    "Grocery",
)
# rows: SEGMENTS, columns: CATEGORIES; each row sums to 1
SEGMENT_CATEGORY_PREF = (
    (0.30, 0.15, 0.15, 0.05, 0.10, 0.15, 0.05, 0.05),
    (0.15, 0.20, 0.15, 0.10, 0.10, 0.10, 0.10, 0.10),
    (0.10, 0.15, 0.10, 0.20, 0.10, 0.10, 0.15, 0.10),
    (0.10, 0.25, 0.10, 0.10, 0.10, 0.15, 0.10, 0.10),
)
CATEGORY_MEDIAN_PRICE = (250.0, 45.0, 60.0, 18.0, 70.0, 25.0, 30.0, 12.0)
# geometric "success" probability of the quantity: lower means bigger baskets
CATEGORY_QTY_P = (0.85, 0.6, 0.7, 0.6, 0.75, 0.55, 0.65, 0.4)
CATEGORY_ITEMS = {
    "Electronics": ("Wireless Headphones", "Smartwatch", "Bluetooth Speaker", "4K Monitor",
                    "Mechanical Keyboard", "Gaming Mouse", "Tablet", "Laptop", "Webcam",
                    "Power Bank", "Smartphone", "E-Reader"),
    "Clothing": ("Denim Jacket", "Running Shoes", "Wool Sweater", "Rain Coat", "Chino Pants",
                 "Linen Shirt", "Hoodie", "Sneakers", "Summer Dress", "Leather Belt",
                 "Beanie", "Cargo Shorts"),
    "Home & Kitchen": ("Coffee Maker", "Chef Knife", "Cast Iron Pan", "Blender", "Toaster",
                       "Desk Lamp", "Bath Towel Set", "Air Fryer", "Kettle", "Throw Pillow",
                       "Storage Box", "Cutting Board"),
    "Books": ("Cookbook", "Thriller Novel", "Travel Guide", "Science Fiction Novel",
              "Biography", "Poetry Collection", "History Atlas", "Kids Picture Book",
              "Data Engineering Handbook", "Graphic Novel", "Language Course",
              "Fantasy Saga"),
    "Sports & Outdoors": ("Yoga Mat", "Camping Tent", "Trail Backpack", "Dumbbell Set",
                          "Cycling Helmet", "Water Bottle", "Tennis Racket", "Sleeping Bag",
                          "Resistance Bands", "Hiking Poles", "Football", "Jump Rope"),
    "Beauty": ("Face Serum", "Shampoo", "Moisturiser", "Lip Balm", "Sunscreen", "Perfume",
               "Hair Dryer", "Nail Polish", "Body Lotion", "Beard Oil", "Face Mask",
               "Eye Cream"),
    "Toys & Games": ("Puzzle 1000", "Building Blocks", "Board Game", "Plush Bear",
                     "Remote Car", "Card Game", "Doll House", "Kite", "Science Kit",
                     "Art Set", "Train Set", "Yo-Yo"),
    "Grocery": ("Olive Oil", "Ground Coffee", "Green Tea", "Dark Chocolate", "Pasta",
                "Honey", "Granola", "Basmati Rice", "Peanut Butter", "Sparkling Water",
                "Almonds", "Maple Syrup"),
}
BRANDS = (
    "Acme", "Northwind", "Contoso", "Fabrikam", "Globex", "Initech", "Umbrella", "Stark",
    "Wayne", "Tyrell", "Aperture", "Hooli", "Vandelay", "Soylent", "Wonka", "Oscorp",
    "Cyberdyne", "Gringotts", "Monarch", "Pied Piper",
)

# (city, country, region)
CITIES = (
    ("New York", "United States", "North America"),
    ("Los Angeles", "United States", "North America"),
    ("Chicago", "United States", "North America"),
    ("Houston", "United States", "North America"),
    ("Seattle", "United States", "North America"),
    ("Toronto", "Canada", "North America"),
    ("Vancouver", "Canada", "North America"),
    ("Boston", "United States", "North America"),
    ("London", "United Kingdom", "Europe"),
    ("Manchester", "United Kingdom", "Europe"),
    ("Berlin", "Germany", "Europe"),
    ("Munich", "Germany", "Europe"),
    ("Paris", "France", "Europe"),
    ("Madrid", "Spain", "Europe"),
    ("Amsterdam", "Netherlands", "Europe"),
    ("Warsaw", "Poland", "Europe"),
    ("Tokyo", "Japan", "Asia Pacific"),
    ("Singapore", "Singapore", "Asia Pacific"),
    ("Sydney", "Australia", "Asia Pacific"),
    ("Seoul", "South Korea", "Asia Pacific"),
    ("Mumbai", "India", "Asia Pacific"),
    ("Bangalore", "India", "Asia Pacific"),
    ("Sao Paulo", "Brazil", "Latin America"),
    ("Mexico City", "Mexico", "Latin America"),
    ("Buenos Aires", "Argentina", "Latin America"),
    ("Bogota", "Colombia", "Latin America"),
    ("Dubai", "United Arab Emirates", "Middle East & Africa"),
    ("Johannesburg", "South Africa", "Middle East & Africa"),
    ("Cairo", "Egypt", "Middle East & Africa"),
)

FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas",
    "Sarah", "Carlos", "Maria", "Ahmed", "Fatima", "Wei", "Mei", "Hiroshi", "Yuki", "Arjun",
    "Priya", "Lukas", "Anna", "Pierre", "Camille", "Olga", "Ivan", "Kwame", "Amara", "Diego",
    "Lucia", "Noah", "Emma", "Liam", "Olivia", "Mateo", "Sofia", "Jonas", "Ingrid",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore",
    "Martin", "Lee", "Chen", "Wang", "Kim", "Tanaka", "Sato", "Patel", "Sharma", "Mueller",
    "Schmidt", "Dubois", "Rossi", "Kowalski", "Novak", "Ivanova", "Okafor", "Mensah",
    "Silva", "Santos", "Haddad", "Nielsen", "Jansen",
)

STATUSES = ("completed", "processing", "pending", "cancelled", "returned")
STATUS_WEIGHTS = (0.72, 0.10, 0.07, 0.06, 0.05)
PAYMENT_METHODS = (
    "credit_card", "debit_card", "paypal", "bank_transfer", "apple_pay", "cash_on_delivery",
)
PAYMENT_WEIGHTS = (0.42, 0.20, 0.20, 0.08, 0.06, 0.04)

# local hour 0..23: quiet nights, a lunch bump and an evening peak
HOUR_WEIGHTS = (
    0.35, 0.20, 0.12, 0.08, 0.07, 0.10, 0.25, 0.50, 0.80, 1.00, 1.10, 1.25,
    1.40, 1.30, 1.15, 1.10, 1.15, 1.30, 1.50, 1.70, 1.80, 1.60, 1.10, 0.65,
)
# Monday..Sunday: weekends sell more
WEEKDAY_WEIGHTS = (1.00, 0.95, 0.95, 1.00, 1.05, 1.20, 1.25)

# Share of a customer's orders in their own favourite category (the rest follows their
# segment's taste). Strong personal taste is what lets a recommender beat popularity:
# at 0.5 even the ideal ranking was only ~1.3x popularity NDCG@10.
PRIMARY_CATEGORY_SHARE = 0.8
